"""Stage `extract`: probe every video of the library and decode its sound to a mono WAV.

Work is cached by content hash: a file already extracted is not decoded again. A file that
cannot be read is listed with its reason in status.csv and never stops the run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vidsim.config import ExtractConfig, from_dict, load_params
from vidsim.extraction import extract_library, read_labels
from vidsim.io import write_table
from vidsim.stages import setup_logging


def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("library", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    params = load_params()
    cfg = from_dict(ExtractConfig, params.get("extract"))
    if not args.library.is_dir():
        raise SystemExit(f"library folder {args.library} does not exist (params.yaml: library.dir)")
    labels = read_labels(args.library / params["library"]["labels"])
    status = extract_library(args.library, args.out, cfg, labels)
    write_table(status, args.out / "status.csv")


if __name__ == "__main__":
    main()
