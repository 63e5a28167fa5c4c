"""Stage `evaluate`: leave-one-out Recall@1/5, mAP and score calibration per modality."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from vidsim.evaluation import RELEVANCE, brier_score, relevance_matrix, retrieval_metrics
from vidsim.index import Index
from vidsim.io import write_json
from vidsim.scores import SCORES
from vidsim.stages import setup_logging

log = logging.getLogger(__name__)


def evaluate(index: Index) -> dict[str, dict[str, float]]:
    """Metrics per modality, on the clips that have labels (from the library's labels.csv)."""
    k = int(index.manifest["search"]["k"])
    out = {}
    for modality, latents in index.latents.items():
        keys = list(RELEVANCE[modality])
        labels = index.clips.iloc[index.rows[modality]][keys].fillna("").astype(str)
        known = np.flatnonzero((labels != "").all(axis=1).to_numpy())
        if len(known) < 2:
            continue
        rel = relevance_matrix([tuple(r) for r in labels.iloc[known].itertuples(index=False)])
        z = latents[known]
        metrics = retrieval_metrics(z, rel)
        for score in SCORES:
            metrics[f"brier_{score}"] = brier_score(z, rel, k, score, index.scales[modality])
        out[modality] = {m: round(v, 4) for m, v in metrics.items()}
        log.info("%s: %s", modality, out[modality])
    return out


def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("index", type=Path)
    parser.add_argument("--metrics", type=Path, required=True)
    args = parser.parse_args()
    metrics = evaluate(Index.load(args.index))
    if not metrics:
        log.warning("the library has no labels.csv (file, audio_label, visual_label): nothing to evaluate")
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
