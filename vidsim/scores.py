"""The two distance-to-probability formulas that need no fitting (see `vidsim.calibration`)."""

from __future__ import annotations

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x))
    return e / e.sum()


def ps_softmax2(distances: np.ndarray) -> np.ndarray:
    """The original's score, exactly: PS = softmax(1 - softmax(d)) over the k distances.

    It sums to 1 over the k hits and stays close to 1/k whatever the distances are.
    """
    return softmax(1.0 - softmax(np.asarray(distances, dtype=np.float64)))


def ps_kernel(distances: np.ndarray, scale: float) -> np.ndarray:
    """exp(-d^2 / (2 s^2)): 1 for an identical clip, 0.61 at the library's typical neighbour
    distance `scale`, independent of k and of the other hits."""
    d = np.asarray(distances, dtype=np.float64)
    return np.exp(-(d**2) / (2.0 * max(scale, 1e-12) ** 2))
