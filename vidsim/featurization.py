"""Featurize, for a folder's extracted clips: audio statistics and windows, per-second frame embeddings.

Features are cached per content hash and per feature settings (encoder, windows), so adding one
video to the library featurizes only that video.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import zipfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from vidsim import media
from vidsim.clip import ClipFeatures, featurize
from vidsim.config import AudioConfig, ExtractConfig
from vidsim.encoder import Encoder
from vidsim.extraction import check_content, check_unchanged
from vidsim.io import atomic_path
from vidsim.progress import progress

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
FEATURES_VERSION = 6  # bump when what a cached file holds changes (5: one BLAS thread, fixed zip stamps;
# 6: int8 encoder weights in 7 bits)


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

    arrays = {"fingerprint": np.array(fp), "audio": arr(feats.audio, 1), "frames": arr(feats.frames, 2),
              "audio_seconds": arr(feats.audio_seconds, 2)}
    # np.savez stamps each member with the time of writing; a fixed stamp makes the same features
    # the same bytes, so dvc.lock does not change when a run (or another engine) redoes them
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name, value in arrays.items():
            with zf.open(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w") as fh:
                np.lib.format.write_array(fh, value, allow_pickle=False)


class CachedFeatures(Mapping[str, ClipFeatures]):
    """The featurized clips, read from their cache files when asked for: a folder's features are
    never all in memory at once (a million 4-s clips are ~16 GB)."""

    def __init__(self, cache: Path, fp: str, shas: list[str]):
        self.cache, self.fp, self.shas = cache, fp, list(dict.fromkeys(shas))

    def __getitem__(self, sha: str) -> ClipFeatures:
        feats = load_cached(self.cache / f"{sha}.npz", self.fp) if sha in self.shas else None
        if feats is None:
            raise KeyError(sha)
        return feats

    def __iter__(self) -> Iterator[str]:
        return iter(self.shas)

    def __len__(self) -> int:
        return len(self.shas)


def _index(value) -> int:
    """A stream index from the status table (-1 where it has none: the first stream of its kind)."""
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return -1


@dataclasses.dataclass(frozen=True)
class Job:
    """One clip to featurize: what extract recorded of it (plain data, so it can travel to a Ray worker)."""

    sha: str
    clip: str
    info: media.MediaInfo
    wav: Path | None  # extract's WAV, None without audio


def featurize_one(job: Job, encoder: Encoder, audio_cfg: AudioConfig, extract_cfg: ExtractConfig,
                  cache: Path, fp: str) -> ClipFeatures | media.MediaError:
    """Featurize one clip and write its cache file (atomically, as the clip ends: a killed run
    resumes there); a bad file comes back as its MediaError. The same on every engine."""
    try:
        # the bytes extract hashed, not a file (or link) swapped in since, nor during decoding
        state = check_content(Path(job.info.path), job.sha)
        result = featurize(job.info, job.wav, encoder, audio_cfg, extract_cfg)
        check_unchanged(Path(job.info.path), state)
    except media.MediaError as exc:
        log.warning("%s: %s", job.clip, exc.reason)
        return exc
    save_cached(cache / f"{job.sha}.npz", fp, result)
    return result


def run_local(jobs: list[Job], encoder: Encoder, audio_cfg: AudioConfig, extract_cfg: ExtractConfig,
              cache: Path, fp: str) -> Iterator[ClipFeatures | media.MediaError]:
    """The local engine: one thread per core, each with its own single-threaded encoder session.

    ffmpeg decodes in its own processes and ONNX Runtime and NumPy free the GIL, so two clips at
    once keep both cores busy where one short clip would leave gaps."""
    workers = min(extract_cfg.pool_size, max(len(jobs), 1))
    local = threading.local()

    def own_encoder() -> Encoder:
        if workers == 1:
            return encoder
        if not hasattr(local, "encoder"):
            local.encoder = encoder.with_threads(1)
        return local.encoder

    with ThreadPoolExecutor(workers, thread_name_prefix="vidsim-featurize") as pool:
        yield from pool.map(lambda job: featurize_one(job, own_encoder(), audio_cfg, extract_cfg, cache, fp), jobs)


def featurize_library(status: pd.DataFrame, extracted: Path, cache: Path, encoder: Encoder,
                      audio_cfg: AudioConfig, extract_cfg: ExtractConfig, engine: str = "local"
                      ) -> tuple[pd.DataFrame, CachedFeatures]:
    """Features per ok clip (cached by sha256, read back from the cache when used); failures are
    written back into the status table.

    Args:
        engine: "local" (threads on this machine) or "ray" (Ray workers: a local Ray, or the
            cluster RAY_ADDRESS names; see vidsim.distributed). Both give the same features.
    """
    cache.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(encoder, audio_cfg, extract_cfg)
    status = status.copy()
    done: list[str] = []  # clips whose features are in the cache
    counts = {"new": 0, "cached": 0, "failed": 0}
    ok = status.index[status["status"] == "ok"]
    todo: dict[str, int] = {}  # sha256 -> the first status row with it
    for i in ok:
        sha = status.at[i, "sha256"]
        if sha in todo or sha in done:
            continue
        if load_cached(cache / f"{sha}.npz", fp) is not None:
            done.append(sha)
        else:
            todo[sha] = i

    jobs = [_job(status.loc[i], sha, extracted) for sha, i in todo.items()]
    if engine == "ray":
        from vidsim import distributed  # noqa: PLC0415 - ray is an optional dependency

        results = distributed.run_ray(jobs, encoder.info, audio_cfg, extract_cfg, cache, fp)
    elif engine == "local":
        results = run_local(jobs, encoder, audio_cfg, extract_cfg, cache, fp)
    else:
        raise ValueError(f"unknown featurize engine {engine!r}; use one of {', '.join(ENGINES)}")
    failed: dict[str, str] = {}
    # one BLAS thread per clip, on every engine and machine: sums then add up in one order, so
    # the features do not depend on the core count (clips run side by side to use the cores)
    with threadpool_limits(1):
        for job, result in progress(zip(jobs, results), total=len(jobs), desc="featurize", unit="clip"):
            if isinstance(result, media.MediaError):
                failed[job.sha] = result.reason
            else:
                done.append(job.sha)
    for i in ok:
        sha = status.at[i, "sha256"]
        if sha in failed:
            status.loc[i, ["status", "reason"]] = ["error", failed[sha]]
            counts["failed"] += 1
        else:
            counts["new" if todo.get(sha) == i else "cached"] += 1
    keep = {f"{s}.npz" for s in done}
    for p in cache.glob("*.npz"):
        if p.name not in keep:
            p.unlink()
    log.info("featurize: %d new, %d cached, %d failed (%s engine)", counts["new"], counts["cached"],
             counts["failed"], engine)
    return status, CachedFeatures(cache, fp, done)


def _job(row: pd.Series, sha: str, extracted: Path) -> Job:
    info = media.MediaInfo(path=row["path"], format_name=row.get("format_name") or "",
                           duration=float(row["duration"]), has_audio=bool(row["has_audio"]),
                           has_video=bool(row["has_video"]),
                           audio_stream=_index(row.get("audio_stream")),
                           video_stream=_index(row.get("video_stream")))
    return Job(sha, row["clip"], info, extracted / "cache" / f"{sha}.wav" if info.has_audio else None)
