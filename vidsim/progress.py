"""Progress of long loops: a tqdm bar in a terminal, a log line every few percent elsewhere (in a
`dvc repro` log or CI, bar redraws would fill the file: 69 KB for the demo)."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
log = logging.getLogger("vidsim.progress")


def progress(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
             every: float = 0.1) -> Iterator[T]:
    """Iterate `items`, showing progress: a bar on a terminal, else a log line each `every` share
    of `total` (and one at the end)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    if sys.stderr.isatty():
        yield from tqdm(items, total=total, desc=desc, unit=unit, leave=False)
        return
    start, done, next_share = time.monotonic(), 0, every
    for item in items:
        yield item
        done += 1
        if total and done < total and done / total >= next_share:
            log.info("%s: %d/%d %s (%d%%, %.0f s)", desc, done, total, unit, 100 * done // total,
                     time.monotonic() - start)
            next_share = (math.floor(done / total / every) + 1) * every
    log.info("%s: %d %s in %.1f s", desc, done, unit, time.monotonic() - start)
