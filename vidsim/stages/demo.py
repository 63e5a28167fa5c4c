"""Stage `demo`: render the labelled demo library and its query clips from the sources, and the
excerpt queries (with the longer videos they come from) for excerpt search."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from vidsim.config import from_dict, load_params
from vidsim.demo import DemoConfig, build_library
from vidsim.stages import setup_logging

log = logging.getLogger(__name__)


def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sources", type=Path)
    parser.add_argument("library", type=Path)
    parser.add_argument("queries", type=Path)
    parser.add_argument("--excerpts", type=Path, help="folder for the excerpt queries")
    args = parser.parse_args()
    params = load_params()
    cfg = from_dict(DemoConfig, {**params["demo"], "seed": params["base"]["seed"]})
    lib = build_library(args.sources, args.library, args.queries, cfg, args.excerpts)
    log.info("demo library: %d clips in %s", len(lib), args.library)


if __name__ == "__main__":
    main()
