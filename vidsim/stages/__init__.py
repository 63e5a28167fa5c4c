"""DVC stages: each module's `main()` reads its paths and its own params.yaml section, then calls
library functions. Run as `python -m vidsim.stages.<stage> ...` (see dvc.yaml)."""

from __future__ import annotations

import logging
import sys


def setup_logging() -> None:
    """Our INFO lines; third-party libraries (open_clip logs on the root logger) from WARNING up."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for name in ("vidsim", "__main__"):
        logging.getLogger(name).setLevel(logging.INFO)
