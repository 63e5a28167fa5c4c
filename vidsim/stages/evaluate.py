"""Stage `evaluate`: leave-one-out over the library for every method (vidsim, the original's
configuration, the raw-feature baseline). A secondary figure, since library clips overlap each
other; it needs no held-out set, so a library of your own gets it too (`heldout` stages score the
held-out sets)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from vidsim.evaluation import leave_one_out
from vidsim.io import write_json
from vidsim.search import Library
from vidsim.stages import setup_logging

log = logging.getLogger(__name__)


def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("index", type=Path)
    parser.add_argument("models", type=Path)
    parser.add_argument("metrics", type=Path, help="leave-one-out metrics (JSON)")
    args = parser.parse_args()
    lib = Library.load(args.index, args.models)
    loo = {}
    for method in lib.methods:
        loo[method] = leave_one_out(lib, method)
        if not loo[method]:
            log.warning("no labelled library clip: %s has no leave-one-out metrics", method)
        log.info("leave-one-out %s: %s", method, loo[method])
    write_json(args.metrics, loo)


if __name__ == "__main__":
    main()
