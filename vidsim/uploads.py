"""Untrusted uploads: bytes go to a fresh private folder under a fixed name, removed afterwards.

A server killed mid-query (SIGTERM, a crash) cannot run its clean-up, so each folder carries the
server's process id and the next upload removes the folders of processes that are gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

UPLOAD_NAME = "upload"  # the user's file name is never used on disk or on a command line
PREFIX = "vidsim-upload-"


@contextlib.contextmanager
def private_copy(data: bytes) -> Iterator[Path]:
    """Yield the path of a 0600 file holding `data` in a new 0700 folder; delete both on exit."""
    sweep_stale()
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    try:
        path = folder / UPLOAD_NAME
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep_stale(root: str | os.PathLike | None = None) -> int:
    """Remove upload folders (ours: same user) left by processes that no longer run; returns how many."""
    root = Path(root or tempfile.gettempdir())
    removed = 0
    for folder in root.glob(f"{PREFIX}*"):
        match = re.match(rf"{PREFIX}(\d+)-", folder.name)
        try:
            if not match or not folder.is_dir() or folder.is_symlink() or folder.stat().st_uid != os.getuid():
                continue
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
        except (PermissionError, OSError):
            continue  # alive under another user, or unreadable: not ours to remove
    return removed
