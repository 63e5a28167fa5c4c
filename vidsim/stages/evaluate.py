"""Stage `evaluate`: leave-one-out Recall@1/5, mAP and score calibration per modality."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from vidsim.evaluation import RELEVANCE, brier_score, relevance_matrix, retrieval_metrics
from vidsim.index import Index
from vidsim.io import write_json
from vidsim.scores import SCORES
from vidsim.stages import setup_logging

log = logging.getLogger(__name__)


def evaluate(index: Index, labels: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Metrics per modality, on the clips that have labels."""
    by_clip = labels.set_index("file")
    k = int(index.manifest["search"]["k"])
    out = {}
    for modality, latents in index.latents.items():
        names = index.clip_names(modality)
        known = [i for i, n in enumerate(names) if n in by_clip.index]
        if len(known) < 2:
            continue
        keys = RELEVANCE[modality]
        rel = relevance_matrix([tuple(by_clip.loc[names[i], list(keys)]) for i in known])
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
    parser.add_argument("labels", type=Path, help="CSV with file, audio_label, visual_label")
    parser.add_argument("--metrics", type=Path, required=True)
    args = parser.parse_args()
    index = Index.load(args.index)
    if args.labels.exists():
        metrics = evaluate(index, pd.read_csv(args.labels, keep_default_na=False))
    else:
        log.warning("no labels at %s: nothing to evaluate", args.labels)
        metrics = {}
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
