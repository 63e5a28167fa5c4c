"""Stage `sources`: fetch the demo's free-licensed music and photos (or generate the fallback)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from vidsim.config import from_dict, load_params
from vidsim.demo import SourcesConfig, fetch_sources
from vidsim.stages import setup_logging

log = logging.getLogger(__name__)


def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    params = load_params()
    cfg = from_dict(SourcesConfig, {**params["sources"], "seed": params["base"]["seed"]})
    kind = fetch_sources(args.out, cfg)
    log.info("demo sources (%s) in %s", kind, args.out)


if __name__ == "__main__":
    main()
