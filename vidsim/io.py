"""Small file helpers: atomic writes, content hashes, JSON."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # like a plainly created file, not mkstemp's 0600
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


PART = ".part"  # suffix of an array file being written


def open_array(path: str | os.PathLike, shape: tuple[int, ...], dtype=np.float32,
               fill: float | None = None) -> np.memmap:
    """A new `.npy` file written in place through a memory map (arrays larger than memory), as
    `<path>.part` until `close_array` renames it: a reader never sees half an array."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.lib.format.open_memmap(path.with_name(path.name + PART), mode="w+", dtype=dtype, shape=shape)
    if fill is not None:
        arr[:] = fill
    return arr


def close_array(arr: np.memmap) -> None:
    """Flush an `open_array` file and give it its name."""
    arr.flush()
    part = Path(arr.filename)
    os.replace(part, part.with_name(part.name[:-len(PART)]))


def write_json(path: str | os.PathLike, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def file_sha256(path: str | os.PathLike) -> str:
    """Content hash; the cache key of a clip's features."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# First characters that make a spreadsheet program run a cell as a formula, and our escape mark.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a table of file names and labels as CSV that `read_table` gives back exactly.

    Every field is quoted, so a carriage return or newline in a name stays inside its field; a text
    starting like a spreadsheet formula (=, +, -, @, tab, CR) is written with a leading "'", which
    spreadsheet programs show as text and `read_table` removes (as it does from a leading "'").
    """
    out = table.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col])):
            text = out[col].map(lambda v: isinstance(v, str), na_action="ignore").fillna(False).astype(bool)
            risky = text & out[col].where(text, "").astype(str).str.startswith(_FORMULA_START)
            if risky.any():
                out[col] = out[col].astype(object)
                out.loc[risky, col] = "'" + out.loc[risky, col].astype(str)
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False, quoting=csv.QUOTE_ALL, lineterminator="\n")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A table written by `write_table`, every column as text.

    Read by Arrow's CSV reader (on all cores; a million-clip index's table in a fraction of
    pandas' time, `python -m vidsim.bench --scale`), which keeps quoted line breaks inside their
    field; nothing is taken for a missing value."""
    import pyarrow as pa  # noqa: PLC0415 - pandas has imported it already
    import pyarrow.csv as pacsv  # noqa: PLC0415

    with open(path, "rb") as fh:  # the header, to read every column as text
        header = next(csv.reader([fh.readline().decode("utf-8")]), [])
    arrow = pacsv.read_csv(
        path, parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()), null_values=[],
                                             strings_can_be_null=False, quoted_strings_can_be_null=False))
    table = arrow.to_pandas()
    for col in table.columns:  # vectorised
        marked = table[col].str.startswith("'")
        if marked.any():
            table.loc[marked, col] = table.loc[marked, col].str[1:]
    return table


def read_status(path: str | os.PathLike) -> pd.DataFrame:
    """The per-file status table (clip, path, status, reason, ...) with real booleans and numbers."""
    table = read_table(path)
    for col in ("has_audio", "has_video"):
        if col in table:
            table[col] = table[col] == "True"
    if "duration" in table:
        table["duration"] = pd.to_numeric(table["duration"], errors="coerce")
    return table
