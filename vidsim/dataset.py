"""The featurize stage's output as model inputs: one matrix per modality."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from vidsim.config import MODALITIES
from vidsim.io import read_status


def load_features(features_dir: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """(ok clips table, {"audio": (N, 138), "visual": (N, D)}) with NaN rows for missing streams."""
    d = Path(features_dir)
    status = read_status(d / "status.csv")
    clips = status[status["status"] == "ok"].reset_index(drop=True)
    with np.load(d / "features.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in ("audio", "visual")}
    return clips, arrays


def modality_matrix(arrays: dict[str, np.ndarray], modality: str) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of the clips that have the modality, and their input vectors.

    Returns:
        rows (M,) int64 and X (M, D) float32; audio_visual is early fusion, [audio | visual].
    """
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; use one of {', '.join(MODALITIES)}")
    if modality == "audio_visual":
        x = np.concatenate([arrays["audio"], arrays["visual"]], axis=1)
    else:
        x = arrays[modality]
    rows = np.flatnonzero(~np.isnan(x).any(axis=1))
    return rows, x[rows].astype(np.float32)
