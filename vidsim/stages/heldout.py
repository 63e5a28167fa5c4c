"""Stage `heldout` (one per set in params.yaml `evaluation`): a held-out set against the library
for every method (vidsim, the original's configuration, the raw-feature baseline), and the
late-fusion weight sweep on it. `queries` are clips that must not overlap the library, judged by
their labels; `excerpts` are parts of library videos and distractors, judged by which clip and where."""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

import pandas as pd

from vidsim.dataset import load_features
from vidsim.evaluation import SET_KINDS, evaluate_set
from vidsim.io import atomic_path, write_json
from vidsim.search import Library
from vidsim.stages import setup_logging

log = logging.getLogger(__name__)


def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=SET_KINDS)
    parser.add_argument("features", type=Path, help="the set's featurized folder")
    parser.add_argument("labels", type=Path, help="the set's labels.csv")
    parser.add_argument("index", type=Path)
    parser.add_argument("models", type=Path)
    parser.add_argument("--metrics", type=Path, required=True, help="folder for <method>.json files")
    parser.add_argument("--sweep", type=Path, required=True, help="late-fusion weight sweep (CSV)")
    args = parser.parse_args()
    labels = pd.read_csv(args.labels, keep_default_na=False, dtype=str)
    lib = Library.load(args.index, args.models)
    try:
        metrics, sweep = evaluate_set(args.kind, lib, load_features(args.features), labels)
    except ValueError as exc:
        raise SystemExit(f"{args.labels}: {exc}") from None
    shutil.rmtree(args.metrics, ignore_errors=True)
    for method, found in metrics.items():
        log.info("%s, %s: %s", args.kind, method, found)
        write_json(args.metrics / f"{method}.json", found)
    with atomic_path(args.sweep) as tmp:
        sweep.to_csv(tmp, index=False)


if __name__ == "__main__":
    main()
