"""Retrieval quality: held-out labelled queries against the library (the headline figures), and
leave-one-out over the library (secondary: its clips overlap each other), per method and modality.

A hit is relevant when it shares the query's labels for the modality (`modalities.RELEVANCE`).
Recall@k is the share of queries with a relevant clip in their top k; mAP averages the precision
at each relevant clip's rank over the full ranking; Brier is the mean squared gap between a top-k
hit's probability of similarity and whether it is relevant (lower is better).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from vidsim.dataset import Features
from vidsim.modalities import RELEVANCE
from vidsim.progress import progress
from vidsim.search import Library, QueryResult

log = logging.getLogger(__name__)
LOO_SAMPLE = 300  # library clips used as leave-one-out queries at most
DEPTH = 100  # hits ranked per query in a library with FAISS indexes (mAP@100)


def _label(row: pd.Series | dict, modality: str) -> tuple[str, ...] | None:
    values = tuple(str(row.get(k, "") or "") for k in RELEVANCE[modality])
    return values if all(values) else None


def summarise(rankings: list[tuple[np.ndarray, np.ndarray]], k: int, depth: int | None = None
              ) -> dict[str, float]:
    """Metrics from (relevance of each ranked hit (R,) bool, probabilities (R,)) per query.

    With `depth` (rankings cut there: a library too large to rank whole), average precision is
    over the relevant clips within the cut, reported as `mAP@<depth>`."""
    r1, r5, aps, brier = [], [], [], []
    for rel, prob in rankings:
        if not rel.any():
            continue
        r1.append(bool(rel[0]))
        r5.append(bool(rel[:5].any()))
        ranks = np.flatnonzero(rel) + 1
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
        brier.extend((prob[:k] - rel[:k]) ** 2)
    if not r1:
        return {}
    return {"recall@1": round(float(np.mean(r1)), 4), "recall@5": round(float(np.mean(r5)), 4),
            "mAP" if depth is None else f"mAP@{depth}": round(float(np.mean(aps)), 4),
            "brier": round(float(np.mean(brier)), 4), "queries": len(r1)}


def depth(lib: Library) -> int | None:
    """How deep rankings go: every clip of a library whose spaces are scanned whole, else DEPTH."""
    return None if lib.scans_whole else DEPTH


def _judge(lib: Library, result: QueryResult, want: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    keys = list(RELEVANCE[result.modality])
    rows = lib.rows_of([h.clip for h in result.hits])
    got = np.stack([lib.column(k)[rows].astype(str) for k in keys], axis=1)
    rel = (got == np.array(want)[None, :]).all(axis=1)
    return rel, np.array([h.probability for h in result.hits])


def _per_modality(lib: Library, modalities: list[str], labelled: list[pd.Series],
                  rank: Callable[[int, str], QueryResult]) -> dict[str, dict[str, float]]:
    """Metrics per modality over labelled queries; rank(i, modality) ranks query i (ValueError
    when the query lacks the modality, which then leaves it out)."""
    out = {}
    for modality in modalities:
        rankings = []
        for i, row in enumerate(labelled):
            want = _label(row, modality)
            if want is None:
                continue
            try:
                result = rank(i, modality)
            except ValueError:
                continue
            rankings.append(_judge(lib, result, want))
        if metrics := summarise(rankings, lib.default_k, depth(lib)):
            out[modality] = metrics
    return out


def held_out(lib: Library, queries: Features, method: str, weights: dict | None = None,
             modalities: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Each labelled query clip against the library, per modality of the method (or those given)."""
    rows = [row for _, row in queries.clips.iterrows()]
    return _per_modality(lib, modalities or lib.modalities_of(method), rows,
                         lambda i, m: lib.rank_all(queries.clip(i), m, method, weights, depth=depth(lib)))


def leave_one_out(lib: Library, method: str, sample: int = LOO_SAMPLE) -> dict[str, dict[str, float]]:
    """Each labelled library clip (up to `sample`, evenly spread) against the rest of the library."""
    clips = lib.index.clips
    picks = np.unique(np.linspace(0, len(clips) - 1, min(sample, len(clips))).round().astype(int))
    rows = [clips.iloc[j] for j in picks]
    return _per_modality(lib, lib.modalities_of(method), rows,
                         lambda i, m: lib.rank_clip(rows[i]["clip"], m, method, depth=depth(lib)))


def weight_sweep(lib: Library, queries: Features, method: str = "vidsim", steps: int = 11) -> pd.DataFrame:
    """Audio-visual held-out metrics of late fusion for audio weights 0..1 (visual = 1 - audio)."""
    rows = []
    for w in progress(np.linspace(0, 1, steps), desc="fusion weights", unit="weight"):
        weights = {"audio": float(w), "visual": float(1 - w)}
        m = held_out(lib, queries, method, weights, ["audio_visual"]).get("audio_visual")
        if m:
            rows.append({"audio_weight": round(float(w), 2), "recall@1": m["recall@1"],
                         "mAP": m.get("mAP", m.get(f"mAP@{DEPTH}"))})
    return pd.DataFrame(rows)


def metrics_table(metrics_dir: str | os.PathLike) -> pd.DataFrame:
    """The evaluate stage's held-out figures as one table: a row per (method, modality)."""
    rows = []
    for path in sorted(Path(metrics_dir, "heldout").glob("*.json")):
        for modality, values in json.loads(path.read_text(encoding="utf-8")).items():
            rows.append({"method": path.stem, "modality": modality, **values})
    return pd.DataFrame(rows)
