"""Stage `evaluate`: held-out queries against the library for every method (vidsim, the original's
configuration, the raw-feature baseline), leave-one-out as a secondary figure, the late-fusion
weight sweep, and excerpt search (which clip an excerpt comes from, and where)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from vidsim.dataset import load_features
from vidsim.evaluation import excerpt_search, held_out, leave_one_out, weight_sweep
from vidsim.io import atomic_path, write_json
from vidsim.search import Library
from vidsim.stages import setup_logging

log = logging.getLogger(__name__)


def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("index", type=Path)
    parser.add_argument("models", type=Path)
    parser.add_argument("queries", type=Path, help="the featurized held-out query folder")
    parser.add_argument("--metrics", type=Path, required=True, help="folder for <method>.json files")
    parser.add_argument("--loo", type=Path, required=True, help="leave-one-out metrics (JSON)")
    parser.add_argument("--weights", type=Path, required=True, help="fusion weight sweep (CSV)")
    parser.add_argument("--excerpts", type=Path, help="the featurized excerpt query folder")
    parser.add_argument("--excerpt-labels", type=Path, help="the excerpt folder's labels.csv (source, source_start)")
    parser.add_argument("--excerpt-metrics", type=Path, help="excerpt search metrics (JSON)")
    args = parser.parse_args()
    lib = Library.load(args.index, args.models)
    queries = load_features(args.queries)
    loo = {}
    for method in lib.methods:
        metrics = held_out(lib, queries, method)
        if not metrics:
            log.warning("no labelled held-out query: %s has no held-out metrics", method)
        log.info("held-out %s: %s", method, metrics)
        write_json(args.metrics / f"{method}.json", metrics)
        loo[method] = leave_one_out(lib, method)
    write_json(args.loo, loo)
    sweep = weight_sweep(lib, queries)
    with atomic_path(args.weights) as tmp:
        sweep.to_csv(tmp, index=False)
    if args.excerpts and args.excerpt_labels and args.excerpt_metrics:
        labels = pd.read_csv(args.excerpt_labels, keep_default_na=False, dtype={"source": str})
        metrics, thresholds = excerpt_search(lib, load_features(args.excerpts), labels)
        log.info("excerpt search: %s; same-footage thresholds that separate the excerpts from the "
                 "distractors: %s (search.same_footage: %s)", metrics.get(lib.default_method), thresholds,
                 lib.search_cfg.same_footage)
        write_json(args.excerpt_metrics, {**metrics, "separating_thresholds": thresholds})


if __name__ == "__main__":
    main()
