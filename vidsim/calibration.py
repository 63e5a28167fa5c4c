"""Probability of similarity: from a hit's distance to the chance that it is relevant.

- `logistic` (default when the library has labels): p = sigmoid(a + b * d), fitted on the
  library's own leave-one-out distances against its labels (Platt scaling), so that "70 %" means
  that about 7 hits in 10 with that score share the query's label.
- `kernel` (no labels): exp(-d^2 / 2 s^2), with s the library's median distance to the k-th
  nearest other clip: 1 for an identical clip, 0.61 at a typical neighbour's distance.
- `softmax2`, the original's PS = softmax(1 - softmax(d)) over the k hits (see `vidsim.scores`).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from vidsim.scores import ps_kernel

log = logging.getLogger(__name__)

# above twice this many pairs, the logistic fit takes pairs of nearly equal distance together
# (`grouped_pairs`): at a million clips 1.6 M pairs a space took 1.5 s a fit
FIT_GROUPS = 20000


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Maps distances to probabilities; saved as plain numbers in the index manifest."""

    kind: str  # "logistic" or "kernel"
    a: float = 0.0
    b: float = 0.0
    scale: float = 1.0  # the kernel's width (also kept for logistic, for reference)
    prior: float = 0.5  # share of relevant pairs in the library (for a missing modality)

    def __call__(self, distances: np.ndarray) -> np.ndarray:
        d = np.asarray(distances, dtype=np.float64)
        if self.kind == "logistic":
            return 1.0 / (1.0 + np.exp(-(self.a + self.b * d)))
        if self.kind == "kernel":
            return ps_kernel(d, self.scale)
        raise ValueError(f"unknown calibration {self.kind!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def fit(distances: np.ndarray, relevant: np.ndarray | None, k: int, weights: np.ndarray | None = None
        ) -> Calibration:
    """Fit on a leave-one-out distance matrix of library clips.

    Args:
        distances: (Q, N) distances from Q sampled library clips to N others (all, or a sample
            that holds each query's nearest), inf where a clip meets itself or a row is padded.
        relevant: (Q, N) bool, same labels; None when the library has no labels.
        k: the neighbour whose median distance sets the kernel width.
        weights: (Q, N) how many clips each pair stands for (a stratified sample); 1 when None.
    """
    finite = np.where(np.isfinite(distances), distances, np.nan)
    kk = min(k, distances.shape[1] - 1) - 1
    scale = float(np.nanmedian(np.sort(finite, axis=1)[:, max(kk, 0)])) if distances.size else 1.0
    scale = scale if np.isfinite(scale) and scale > 0 else 1.0
    if relevant is None:
        return Calibration("kernel", scale=scale)
    mask = np.isfinite(distances)
    d, y = distances[mask], relevant[mask]
    w = np.ones(len(d)) if weights is None else weights[mask]
    prior = float(np.average(y, weights=w)) if y.size else 0.5
    if y.all() or not y.any():
        log.warning("labels do not separate any pair: kernel probabilities instead of a fitted one")
        return Calibration("kernel", scale=scale, prior=prior)
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - only when fitting

    if len(d) > 2 * FIT_GROUPS:
        d, y, w = grouped_pairs(d, y, w)
    # a tight tolerance: with rare relevant pairs (a large library, fine labels) the mean loss's
    # gradient is tiny long before the fit separates them (at a million clips the default stopped
    # at a slope of -4.7 where the optimum is -54, every probability under 0.01)
    model = LogisticRegression(C=100.0, tol=1e-10, max_iter=10000).fit(
        d[:, None], y, sample_weight=w)  # (sklearn takes None as ones)
    return Calibration("logistic", a=float(model.intercept_[0]), b=float(model.coef_[0, 0]), scale=scale,
                       prior=prior)


def grouped_pairs(d: np.ndarray, y: np.ndarray, w: np.ndarray, groups: int = FIT_GROUPS
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distances, labels, weights) of at most 2 x `groups` rows that stand for all the pairs in a
    logistic fit: the pairs sorted by distance in `groups` runs of equal count, and each run's
    relevant pairs and its other pairs as one row each, at their weighted mean distance, weighted
    by their total weight. Each row's loss then differs from its pairs' summed losses by the
    second-order term only (b^2 p (1 - p) times their variance within the run, 1/`groups` of the
    pairs wide), as Platt scaling on binned scores does."""
    order = np.argsort(d, kind="stable")
    d, y, w = d[order], y[order].astype(bool), w[order].astype(np.float64)
    starts = np.linspace(0, len(d), groups + 1).astype(np.int64)[:-1]
    rows, labels, weights = [], [], []
    for label in (True, False):
        wl = np.where(y == label, w, 0.0)
        total = np.add.reduceat(wl, starts)
        keep = total > 0
        rows.append(np.add.reduceat(wl * d, starts)[keep] / total[keep])
        labels.append(np.full(keep.sum(), label))
        weights.append(total[keep])
    return np.concatenate(rows), np.concatenate(labels), np.concatenate(weights)
