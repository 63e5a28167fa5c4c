"""Untrusted uploads: bytes go to a fresh private folder under a fixed name, removed afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

UPLOAD_NAME = "upload"  # the user's file name is never used on disk or on a command line


@contextlib.contextmanager
def private_copy(data: bytes) -> Iterator[Path]:
    """Yield the path of a 0600 file holding `data` in a new 0700 folder; delete both on exit."""
    folder = Path(tempfile.mkdtemp(prefix="vidsim-upload-"))
    try:
        path = folder / UPLOAD_NAME
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
