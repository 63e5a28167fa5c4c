"""Featurize, for a folder's extracted clips: audio statistics and windows, per-second frame embeddings.

Features are cached per content hash and per feature settings (encoder, windows), so adding one
video to the library featurizes only that video.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from vidsim import media
from vidsim.clip import ClipFeatures, featurize
from vidsim.config import AudioConfig, ExtractConfig
from vidsim.encoder import Encoder
from vidsim.extraction import check_content, check_unchanged
from vidsim.io import atomic_path
from vidsim.progress import progress

log = logging.getLogger(__name__)

FEATURES_VERSION = 4  # bump when what a cached file holds changes (4: frames embedded by ONNX Runtime)


def fingerprint(encoder: Encoder, audio_cfg: AudioConfig, extract_cfg: ExtractConfig) -> str:
    """Everything a cached feature file depends on besides the video's bytes."""
    return json.dumps({"encoder": encoder.info.fingerprint, "audio": dataclasses.asdict(audio_cfg),
                       "rate": extract_cfg.sample_rate, "fps": extract_cfg.frame_rate,
                       "version": FEATURES_VERSION}, sort_keys=True)


def load_cached(path: Path, fp: str) -> ClipFeatures | None:
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as npz:
        if "fingerprint" not in npz or str(npz["fingerprint"]) != fp:
            return None
        return ClipFeatures(audio=npz["audio"] if npz["audio"].size else None,
                            frames=npz["frames"] if npz["frames"].size else None,
                            audio_seconds=npz["audio_seconds"] if npz["audio_seconds"].size else None)


def save_cached(path: Path, fp: str, feats: ClipFeatures) -> None:
    def arr(x: np.ndarray | None, ndim: int) -> np.ndarray:
        return x if x is not None else np.zeros((0,) * ndim, np.float32)

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, fingerprint=np.array(fp), audio=arr(feats.audio, 1), frames=arr(feats.frames, 2),
                 audio_seconds=arr(feats.audio_seconds, 2))


def _index(value) -> int:
    """A stream index from the status table (-1 where it has none: the first stream of its kind)."""
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return -1


def featurize_library(status: pd.DataFrame, extracted: Path, cache: Path, encoder: Encoder,
                      audio_cfg: AudioConfig, extract_cfg: ExtractConfig
                      ) -> tuple[pd.DataFrame, dict[str, ClipFeatures]]:
    """Features per ok clip (cached by sha256); failures are written back into the status table."""
    cache.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(encoder, audio_cfg, extract_cfg)
    status = status.copy()
    feats: dict[str, ClipFeatures] = {}
    counts = {"new": 0, "cached": 0, "failed": 0}
    ok = status.index[status["status"] == "ok"]
    todo: dict[str, int] = {}  # sha256 -> the first status row with it
    for i in ok:
        sha = status.at[i, "sha256"]
        if sha in feats or sha in todo:
            continue
        cached = load_cached(cache / f"{sha}.npz", fp)
        if cached is not None:
            feats[sha] = cached
        else:
            todo[sha] = i

    workers = min(extract_cfg.pool_size, max(len(todo), 1))
    local = threading.local()

    def own_encoder() -> Encoder:
        """One single-threaded session per worker thread when clips run side by side."""
        if workers == 1:
            return encoder
        if not hasattr(local, "encoder"):
            local.encoder = encoder.with_threads(1)
        return local.encoder

    def one(sha: str) -> ClipFeatures | media.MediaError:
        row = status.loc[todo[sha]]
        info = media.MediaInfo(path=row["path"], format_name=row.get("format_name") or "",
                               duration=float(row["duration"]), has_audio=bool(row["has_audio"]),
                               has_video=bool(row["has_video"]),
                               audio_stream=_index(row.get("audio_stream")),
                               video_stream=_index(row.get("video_stream")))
        try:
            # the bytes extract hashed, not a file (or link) swapped in since, nor during decoding
            state = check_content(Path(row["path"]), sha)
            wav = extracted / "cache" / f"{sha}.wav" if info.has_audio else None
            result = featurize(info, wav, own_encoder(), audio_cfg, extract_cfg)
            check_unchanged(Path(row["path"]), state)
        except media.MediaError as exc:
            log.warning("%s: %s", row["clip"], exc.reason)
            return exc
        save_cached(cache / f"{sha}.npz", fp, result)  # as each clip ends: a killed run resumes here
        return result

    # One thread per core: ffmpeg decodes in its own processes and ONNX Runtime and NumPy free the
    # GIL, so two clips at once keep both cores busy where one short clip would leave gaps.
    failed: dict[str, str] = {}
    with ThreadPoolExecutor(workers, thread_name_prefix="vidsim-featurize") as pool:
        for sha, result in progress(zip(todo, pool.map(one, todo)), total=len(todo), desc="featurize",
                                    unit="clip"):
            if isinstance(result, media.MediaError):
                failed[sha] = result.reason
            else:
                feats[sha] = result
    for i in ok:
        sha = status.at[i, "sha256"]
        if sha in failed:
            status.loc[i, ["status", "reason"]] = ["error", failed[sha]]
            counts["failed"] += 1
        else:
            counts["new" if todo.get(sha) == i else "cached"] += 1
    keep = {f"{s}.npz" for s in feats}
    for p in cache.glob("*.npz"):
        if p.name not in keep:
            p.unlink()
    log.info("featurize: %(new)d new, %(cached)d cached, %(failed)d failed", counts)
    return status, feats
