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
from dataclasses import replace
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


def summarise(rankings: list[tuple], k: int, depth: int | None = None) -> dict[str, float]:
    """Metrics from (relevance of each ranked hit (R,) bool, probabilities (R,)[, relevant clips in
    the library]) per query; a query with no relevant clip in the library is left out.

    With `depth` (rankings cut there: a library too large to rank whole), the third item says how
    many relevant clips the library holds, so a query whose relevant clips all lie beyond the cut
    counts as a miss, and average precision is over min(that count, depth) (`mAP@<depth>`)."""
    r1, r5, aps, brier = [], [], [], []
    for rel, prob, *total in rankings:
        wanted = int(total[0]) if total else int(rel.sum())
        if wanted <= 0:
            continue
        r1.append(bool(rel[:1].any()))
        r5.append(bool(rel[:5].any()))
        ranks = np.flatnonzero(rel) + 1
        aps.append(float(np.sum(np.arange(1, len(ranks) + 1) / ranks)) / min(wanted, len(rel)))
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
    rows = lib.rows_of([h.clip for h in result.hits])
    rel = _labels(lib, result.modality, rows) == np.array(want)[None, :]
    return rel.all(axis=1), np.array([h.probability for h in result.hits])


def _labels(lib: Library, modality: str, rows: np.ndarray) -> np.ndarray:
    """(len(rows), K) str: the modality's relevance labels of these library rows."""
    return np.stack([lib.column(k)[rows].astype(str) for k in RELEVANCE[modality]], axis=1)


def _label_counts(lib: Library, modality: str) -> dict[tuple[str, ...], int]:
    """How many library clips carry each label of the modality."""
    labels = _labels(lib, modality, np.arange(len(lib.index.clips)))
    values, counts = np.unique(labels, axis=0, return_counts=True)
    return {tuple(v): int(c) for v, c in zip(values, counts)}


def _per_modality(lib: Library, modalities: list[str], labelled: list[pd.Series],
                  rank: Callable[[int, str], QueryResult], self_rows: Callable[[int], np.ndarray] | None = None
                  ) -> dict[str, dict[str, float]]:
    """Metrics per modality over labelled queries; rank(i, modality) ranks query i (ValueError
    when the query lacks the modality, which then leaves it out). With a depth cut, the relevant
    clips a query could have found are counted in the library, less its `self_rows` (the row of a
    library-clip query, which it leaves out)."""
    cut = depth(lib)
    out = {}
    for modality in modalities:
        counts = _label_counts(lib, modality) if cut is not None else {}
        rankings = []
        for i, row in enumerate(labelled):
            want = _label(row, modality)
            if want is None:
                continue
            try:
                result = rank(i, modality)
            except ValueError:
                continue
            rel, prob = _judge(lib, result, want)
            if cut is None:
                rankings.append((rel, prob))
                continue
            own = self_rows(i) if self_rows is not None else np.zeros(0, np.int64)
            own_relevant = int((_labels(lib, modality, own) == np.array(want)[None, :]).all(axis=1).sum())
            rankings.append((rel, prob, counts.get(want, 0) - own_relevant))
        if metrics := summarise(rankings, lib.default_k, cut):
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
                         lambda i, m: lib.rank_clip(rows[i]["clip"], m, method, depth=depth(lib)),
                         lambda i: np.array([lib.row_of(rows[i]["clip"])]))


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


def excerpt_sweep(lib: Library, excerpts: Features, labels: pd.DataFrame, method: str = "vidsim",
                  steps: int = 11) -> pd.DataFrame:
    """Audio-visual excerpt search of late fusion for audio weights 0..1 (visual = 1 - audio)."""
    rows = []
    for w in progress(np.linspace(0, 1, steps), desc="fusion weights", unit="weight"):
        weights = {"audio": float(w), "visual": float(1 - w)}
        found, _ = excerpt_search(lib, excerpts, labels, methods=[method], modalities=["audio_visual"],
                                  weights=weights)
        if m := found.get(method, {}).get("audio_visual"):
            rows.append({"audio_weight": round(float(w), 2), "recall@1": m["recall@1"],
                         "median_offset_error_s": m["median_offset_error_s"], "auc": m["auc"]})
    return pd.DataFrame(rows)


def with_labels(features: Features, labels: pd.DataFrame) -> Features:
    """The features with their clips' labels taken from a labels.csv table (file, audio_label,
    visual_label): a clip it does not list is unlabelled."""
    table = labels.drop_duplicates("file").set_index("file")
    clips = features.clips.copy()
    for column in RELEVANCE["audio_visual"]:
        values = table[column].astype(str) if column in table else pd.Series(dtype=str)
        clips[column] = clips["clip"].map(values).fillna("")
    return replace(features, clips=clips)


# the columns each kind of held-out set's labels.csv must have
SET_KINDS = {"queries": ("file", "audio_label", "visual_label"), "excerpts": ("file", "source", "source_start")}


def evaluate_set(kind: str, lib: Library, features: Features, labels: pd.DataFrame
                 ) -> tuple[dict[str, dict[str, dict[str, float]]], pd.DataFrame]:
    """One held-out set against the library for every method, and its late-fusion weight sweep.

    Args:
        kind: `queries` (clips that must not overlap the library, judged by their labels) or
            `excerpts` (parts of library videos and distractors, judged by which clip and where).
        labels: the set's labels.csv: file, audio_label, visual_label (queries) or file, source,
            source_start (excerpts; an empty source is a distractor).

    Returns (method -> modality -> metrics; for excerpts the default method's modalities also carry
    `separating_threshold`, the match score that best separates true excerpts from distractors),
    and the sweep (audio_weight, recall@1, ...).

    Raises:
        ValueError: an unknown kind, or labels without the kind's columns.
    """
    if kind not in SET_KINDS:
        raise ValueError(f"unknown evaluation set kind {kind!r}: use one of {', '.join(SET_KINDS)}")
    if missing := [c for c in SET_KINDS[kind] if c not in labels]:
        raise ValueError(f"its labels.csv has no {', '.join(missing)} column: a held-out {kind} set's "
                         f"labels.csv has {', '.join(SET_KINDS[kind])}")
    if kind == "queries":
        queries = with_labels(features, labels)
        metrics = {method: held_out(lib, queries, method) for method in lib.methods}
        for method, found in metrics.items():
            if not found:
                log.warning("no labelled held-out query: %s has no held-out metrics", method)
        return metrics, weight_sweep(lib, queries, lib.default_method)
    metrics, thresholds = excerpt_search(lib, features, labels)
    log.info("same-footage thresholds that separate the excerpts from the distractors: %s "
             "(search.same_footage: %s)", thresholds, lib.search_cfg.same_footage)
    for modality, threshold in thresholds.items():
        metrics[lib.default_method][modality]["separating_threshold"] = threshold
    return metrics, excerpt_sweep(lib, features, labels, lib.default_method)


def excerpt_search(lib: Library, excerpts: Features, labels: pd.DataFrame, k: int = 5,
                   methods: list[str] | None = None, modalities: list[str] | None = None,
                   weights: dict[str, float] | None = None,
                   ) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, float]]:
    """Excerpt queries against the library, per method and modality: which clip each comes from
    (source Recall@1/@5 over the excerpts of library clips), where in it (the top hit's matched
    offset against the true one, when the top hit is the source), and how well the top hit's
    match score tells true excerpts from distractors (ROC AUC; the same-footage flag's hit and
    false-alarm rates at the library's thresholds).

    Args:
        labels: the excerpt folder's labels.csv: file, source (a library clip; empty for a
            distractor), source_start (seconds into the source where the excerpt begins).
        methods, modalities, weights: only these methods and modalities (default: all), with
            these late-fusion weights (default: the library's).

    Returns (metrics, the match-score threshold per modality that best separates true excerpts
    from distractors: the midpoint of the widest gap, for `search.same_footage`)."""
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    table = labels.set_index("file")
    known = [(i, table.loc[clip]) for i, clip in enumerate(excerpts.clips["clip"]) if clip in table.index]
    out: dict[str, dict[str, dict[str, float]]] = {}
    thresholds: dict[str, float] = {}
    for method in methods or lib.methods:
        for modality in modalities or lib.modalities_of(method):
            found1, found5, errors, scores, truth, flagged = [], [], [], [], [], []
            for i, row in known:
                try:
                    hits = lib.query_features(excerpts.clip(i), modality, k=k, method=method,
                                             weights=weights).hits
                except ValueError:
                    continue
                source = str(row.get("source", "") or "")
                top = hits[0] if hits else None
                scores.append(top.match.score if top is not None and top.match is not None else 0.0)
                truth.append(bool(source))
                flagged.append(bool(top is not None and top.same_footage))
                if not source:
                    continue
                found1.append(top is not None and top.clip == source)
                found5.append(any(h.clip == source for h in hits))
                if found1[-1] and top.match is not None:
                    offset = top.match.clip_start - top.match.query_start
                    errors.append(abs(offset - float(row["source_start"])))
            if not found1:
                continue
            truth_a, scores_a, flagged_a = np.array(truth), np.array(scores), np.array(flagged)
            metrics = {"recall@1": np.mean(found1), "recall@5": np.mean(found5),
                       "median_offset_error_s": np.median(errors) if errors else np.nan,
                       "within_2s": np.mean(np.array(errors) <= 2.0) if errors else 0.0,
                       "same_footage_rate": flagged_a[truth_a].mean(),
                       "excerpts": int(truth_a.sum()), "distractors": int((~truth_a).sum())}
            if truth_a.all() or not truth_a.any():
                metrics["auc"] = np.nan
            else:
                metrics["auc"] = roc_auc_score(truth_a, scores_a)
                metrics["distractor_same_footage_rate"] = flagged_a[~truth_a].mean()
                if method == lib.default_method:
                    thresholds[modality] = _gap_threshold(scores_a[truth_a], scores_a[~truth_a])
            out.setdefault(method, {})[modality] = {
                key: (int(v) if key in ("excerpts", "distractors") else round(float(v), 4))
                for key, v in metrics.items()}
    return out, thresholds


def _gap_threshold(positives: np.ndarray, negatives: np.ndarray) -> float:
    """The score that best separates two samples: the middle of the gap between the highest
    negative and the lowest positive when they do not overlap; otherwise the midpoint of the two
    medians."""
    hi_neg, lo_pos = float(np.max(negatives)), float(np.min(positives))
    if lo_pos > hi_neg:
        return round((lo_pos + hi_neg) / 2, 3)
    return round((float(np.median(positives)) + float(np.median(negatives))) / 2, 3)


def metrics_table(metrics_dir: str | os.PathLike, kind: str = "queries") -> pd.DataFrame:
    """One held-out set's figures (the `heldout` stage's) as one table: a row per (method, modality)."""
    rows = []
    for path in sorted(Path(metrics_dir, kind).glob("*.json")):
        for modality, values in json.loads(path.read_text(encoding="utf-8")).items():
            rows.append({"method": path.stem, "modality": modality, **values})
    return pd.DataFrame(rows)
