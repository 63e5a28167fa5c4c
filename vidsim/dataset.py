"""The featurize stage's output as arrays: clip-level inputs and per-second rows per modality.

`features.npz` holds, over the ok clips in status order: `audio` (N, 138) and `visual` (N, D)
clip vectors (NaN rows where a stream is missing), and for each single modality its per-second
rows `<m>.seconds` (S, D_m) with `<m>.offsets` (N + 1,): clip i owns rows offsets[i]:offsets[i+1].
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd

from vidsim.io import atomic_path, read_status
from vidsim.modalities import SINGLE, ClipFeatures, check, clip_input


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
        with atomic_path(Path(out_dir) / "features.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def stack(status: pd.DataFrame, feats: dict[str, ClipFeatures], dim: int) -> Features:
    """The ok clips of a status table, in order, with their features stacked."""
    ok = status[status["status"] == "ok"].reset_index(drop=True)
    audio = np.full((len(ok), 138), np.nan, np.float32)
    visual = np.full((len(ok), dim), np.nan, np.float32)
    parts: dict[str, list[np.ndarray]] = {m: [] for m in SINGLE}
    audio_width = next((f.audio_seconds.shape[1] for f in feats.values() if f.audio_seconds is not None), 0)
    widths = {"audio": audio_width, "visual": dim}
    for j, sha in enumerate(ok["sha256"]):
        f = feats[sha]
        if f.audio is not None:
            audio[j] = f.audio
        if f.frames is not None:
            visual[j] = f.visual
        for m in SINGLE:
            rows = f.segments(m)
            parts[m].append(rows if rows is not None else np.zeros((0, widths[m]), np.float32))
    seconds = {m: np.concatenate(parts[m]).astype(np.float32) if parts[m] else np.zeros((0, widths[m]), np.float32)
               for m in SINGLE}
    offsets = {m: np.concatenate([[0], np.cumsum([len(p) for p in parts[m]])]).astype(np.int64) for m in SINGLE}
    return Features(ok, audio, visual, seconds, offsets)


def load_features(features_dir: str | os.PathLike) -> Features:
    """Read a featurize output folder (status.csv + features.npz), without pickle."""
    d = Path(features_dir)
    status = read_status(d / "status.csv")
    clips = status[status["status"] == "ok"].reset_index(drop=True)
    with np.load(d / "features.npz", allow_pickle=False) as npz:
        return Features(clips, npz["audio"], npz["visual"],
                        {m: npz[f"{m}.seconds"] for m in SINGLE}, {m: npz[f"{m}.offsets"] for m in SINGLE})
