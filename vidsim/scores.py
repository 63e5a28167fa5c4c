"""Nearest neighbours in latent space and the probability of similarity of each hit."""

from __future__ import annotations

import numpy as np

SCORES = ("kernel", "softmax2")


def knn(latents: np.ndarray, query: np.ndarray, k: int, exclude: int | None = None
        ) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances of the k nearest rows, nearest first.

    Args:
        latents: (N, L) library latent means.
        query: (L,) latent mean of the query.
        exclude: a row to leave out (the query itself, for leave-one-out evaluation).
    """
    d = np.linalg.norm(latents - query[None, :], axis=1)
    if exclude is not None:
        d[exclude] = np.inf
    k = min(k, len(d) - (exclude is not None))
    idx = np.argsort(d, kind="stable")[:k]
    return idx, d[idx]


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


def probability(distances: np.ndarray, method: str, scale: float) -> np.ndarray:
    if method == "softmax2":
        return ps_softmax2(distances)
    if method == "kernel":
        return ps_kernel(distances, scale)
    raise ValueError(f"unknown score {method!r}; use one of {', '.join(SCORES)}")


def neighbour_scale(latents: np.ndarray, k: int = 5) -> float:
    """Median distance from a library clip to its k-th nearest other clip (the kernel's width)."""
    n = len(latents)
    if n < 2:
        return 1.0
    d = np.linalg.norm(latents[:, None, :] - latents[None, :, :], axis=-1) if n <= 4000 else None
    if d is None:  # large library: a deterministic sample keeps this O(n)
        rows = np.linspace(0, n - 1, 2000).astype(int)
        d = np.linalg.norm(latents[rows, None, :] - latents[None, :, :], axis=-1)
        d[np.arange(len(rows)), rows] = np.inf
    else:
        np.fill_diagonal(d, np.inf)
    kk = min(k, n - 1) - 1
    return float(np.median(np.sort(d, axis=1)[:, kk]))
