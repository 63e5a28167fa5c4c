"""Retrieval quality on a labelled library: leave-one-out Recall@k, mAP and score calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vidsim.scores import knn, probability

# Which labels must agree for a hit to count as relevant, per modality.
RELEVANCE = {"audio": ("audio_label",), "visual": ("visual_label",),
             "audio_visual": ("audio_label", "visual_label")}


def relevance_matrix(labels: list[tuple]) -> np.ndarray:
    """(N, N) bool: same label tuple, diagonal False."""
    codes = pd.factorize(pd.Series(["\x1f".join(map(str, t)) for t in labels]))[0]
    rel = codes[:, None] == codes[None, :]
    np.fill_diagonal(rel, False)
    return rel


def retrieval_metrics(latents: np.ndarray, relevant: np.ndarray, ks: tuple[int, ...] = (1, 5)
                      ) -> dict[str, float]:
    """Leave-one-out retrieval over the library.

    Recall@k is the share of queries with at least one relevant clip in their top k;
    mAP averages the precision at each relevant clip's rank over the full ranking.
    Queries with no relevant clip are left out.
    """
    n = len(latents)
    hits = {k: [] for k in ks}
    aps = []
    for i in range(n):
        if not relevant[i].any():
            continue
        order, _ = knn(latents, latents[i], n, exclude=i)
        rel = relevant[i, order]
        for k in ks:
            hits[k].append(bool(rel[:k].any()))
        ranks = np.flatnonzero(rel) + 1
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
    out = {f"recall@{k}": float(np.mean(v)) if v else float("nan") for k, v in hits.items()}
    out["mAP"] = float(np.mean(aps)) if aps else float("nan")
    out["queries"] = len(aps)
    return out


def brier_score(latents: np.ndarray, relevant: np.ndarray, k: int, method: str, scale: float) -> float:
    """Mean squared gap between a hit's probability of similarity and whether it is relevant."""
    errs = []
    for i in range(len(latents)):
        idx, dist = knn(latents, latents[i], k, exclude=i)
        p = probability(dist, method, scale)
        errs.extend((p - relevant[i, idx]) ** 2)
    return float(np.mean(errs))
