"""The featurize stage's output as arrays: clip-level inputs and per-second rows per modality.

`arrays/` holds one `.npy` per array, over the ok clips in status order: `audio` (N, 138) and
`visual` (N, D) clip vectors (NaN rows where a stream is missing), and for each single modality
its per-second rows `<m>.seconds` (S, D_m) with `<m>.offsets` (N + 1,): clip i owns rows
offsets[i]:offsets[i+1]. They are memory-mapped when read, so a large library is never loaded whole.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from vidsim.io import atomic_path, close_array, open_array, read_status
from vidsim.modalities import SINGLE, ClipFeatures, check, clip_input

ARRAYS_DIR = "arrays"


@dataclasses.dataclass
class Features:
    """A folder's features: the ok clips and their arrays."""

    clips: pd.DataFrame  # ok rows of the status table (clip, path, sha256, labels, ...)
    audio: np.ndarray  # (N, 138) float32, NaN rows without audio
    visual: np.ndarray  # (N, D) float32, NaN rows without video
    seconds: dict[str, np.ndarray]  # single modality -> (S, D_m) float32 per-second rows
    offsets: dict[str, np.ndarray]  # single modality -> (N + 1,) int64

    def clip(self, i: int) -> ClipFeatures:
        """Clip i as the query path sees a clip (so both paths build inputs the same way)."""
        def part(m: str) -> np.ndarray | None:
            a, b = self.offsets[m][i], self.offsets[m][i + 1]
            return self.seconds[m][a:b] if b > a else None

        audio = None if np.isnan(self.audio[i]).any() else self.audio[i]
        return ClipFeatures(audio=audio, frames=part("visual"), audio_seconds=part("audio"))

    def matrix(self, modality: str) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers of the clips that have the modality, and their clip-level inputs.

        Returns:
            rows (M,) int64 and X (M, D) float32; audio_visual is early fusion, [audio | visual].
        """
        x = clip_input(self.audio, self.visual, check(modality))
        rows = np.flatnonzero(~np.isnan(x).any(axis=1))
        if len(rows) == len(x):  # no copy of a large (memory-mapped) array when every clip has it
            return rows, x if x.dtype == np.float32 else x.astype(np.float32)
        return rows, x[rows].astype(np.float32)

    def segment_rows(self, modality: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows (M,), offsets (M + 1,), seconds (S, D)) of the clips that have the modality."""
        off = self.offsets[modality]
        counts = np.diff(off)
        rows = np.flatnonzero(counts > 0)
        return rows, np.concatenate([[0], np.cumsum(counts[rows])]).astype(np.int64), self.seconds[modality]

    def save(self, out_dir: str | os.PathLike) -> None:
        arrays = {"audio": self.audio, "visual": self.visual}
        for m in SINGLE:
            arrays[f"{m}.seconds"] = self.seconds[m]
            arrays[f"{m}.offsets"] = self.offsets[m]
        for name, path in feature_files(out_dir).items():
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.save(fh, arrays[name], allow_pickle=False)


def feature_files(out_dir: str | os.PathLike) -> dict[str, Path]:
    """Where a featurize output folder keeps each array."""
    names = ["audio", "visual"] + [f"{m}.{part}" for m in SINGLE for part in ("seconds", "offsets")]
    return {name: Path(out_dir) / ARRAYS_DIR / f"{name}.npy" for name in names}


def stack(status: pd.DataFrame, feats: Mapping[str, ClipFeatures], dim: int,
          out_dir: str | os.PathLike | None = None) -> Features:
    """The ok clips of a status table, in order, with their features stacked.

    With `out_dir`, the arrays are written straight into that folder's memory-mapped files (what
    `Features.save` writes), one clip at a time: `feats` may read each clip from disk when asked
    (the featurize stage's cache), so memory does not grow with the library. Each clip is read
    twice (sizes, then values)."""
    ok = status[status["status"] == "ok"].reset_index(drop=True)
    counts = {m: np.zeros(len(ok), np.int64) for m in SINGLE}
    widths = {"audio": 0, "visual": dim}
    for j, sha in enumerate(ok["sha256"]):
        f = feats[sha]
        for m in SINGLE:
            rows = f.segments(m)
            counts[m][j] = 0 if rows is None else len(rows)
            if m == "audio" and rows is not None:
                widths["audio"] = rows.shape[1]
    offsets = {m: np.concatenate([[0], np.cumsum(counts[m])]).astype(np.int64) for m in SINGLE}
    files = feature_files(out_dir) if out_dir is not None else {}

    def empty(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if out_dir is None:
            return np.full(shape, np.nan, np.float32)
        return open_array(files[name], shape, fill=np.nan)

    audio, visual = empty("audio", (len(ok), 138)), empty("visual", (len(ok), dim))
    seconds = {m: empty(f"{m}.seconds", (int(offsets[m][-1]), widths[m])) for m in SINGLE}
    for j, sha in enumerate(ok["sha256"]):
        f = feats[sha]
        if f.audio is not None:
            audio[j] = f.audio
        if f.frames is not None:
            visual[j] = f.visual
        for m in SINGLE:
            if counts[m][j]:
                seconds[m][offsets[m][j]:offsets[m][j + 1]] = f.segments(m)
    if out_dir is not None:
        for arr in (audio, visual, *seconds.values()):
            close_array(arr)
        for m in SINGLE:
            with atomic_path(files[f"{m}.offsets"]) as tmp, open(tmp, "wb") as fh:
                np.save(fh, offsets[m], allow_pickle=False)
    return Features(ok, audio, visual, seconds, offsets)


def load_features(features_dir: str | os.PathLike) -> Features:
    """Read a featurize output folder (status.csv + arrays/), memory-mapped, without pickle."""
    d = Path(features_dir)
    status = read_status(d / "status.csv")
    clips = status[status["status"] == "ok"].reset_index(drop=True)
    a = {name: np.load(path, mmap_mode="r", allow_pickle=False) for name, path in feature_files(d).items()}
    return Features(clips, a["audio"], a["visual"], {m: a[f"{m}.seconds"] for m in SINGLE},
                    {m: np.asarray(a[f"{m}.offsets"]) for m in SINGLE})
