"""Browsing the library's status table: each clip's state, filters by name, state and label, and
durations as people read them; what the app's library page shows, kept out of the page."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

STATES = ("indexed", "missing audio", "missing video", "failed")


def with_states(status: pd.DataFrame) -> pd.DataFrame:
    """The status table with a `state` column: failed (could not be read), missing audio or
    missing video (indexed for the other modality only), or indexed."""
    if not len(status):
        return status.assign(state=pd.Series(dtype=str))
    failed = status["status"] != "ok"
    return status.assign(state=np.select(
        [failed, ~status["has_audio"].astype(bool), ~status["has_video"].astype(bool)],
        ["failed", "missing audio", "missing video"], "indexed"))


@dataclass(frozen=True)
class ClipFilter:
    """What the user narrowed the library to; empty fields keep every clip."""

    text: str = ""  # part of a file name, case-insensitive
    states: tuple[str, ...] = ()
    audio_labels: tuple[str, ...] = ()
    visual_labels: tuple[str, ...] = ()

    def apply(self, table: pd.DataFrame) -> pd.DataFrame:
        """The rows of a `with_states` table that pass every filter, in library order."""
        keep = np.ones(len(table), bool)
        if self.text.strip():
            keep &= table["clip"].str.contains(self.text.strip(), case=False, regex=False).to_numpy()
        for column, wanted in (("state", self.states), ("audio_label", self.audio_labels),
                               ("visual_label", self.visual_labels)):
            if wanted:
                keep &= table[column].isin(wanted).to_numpy()
        return table[keep]


def labels_of(table: pd.DataFrame, column: str) -> list[str]:
    """The distinct non-empty labels of a column, sorted (empty when the library has no labels)."""
    if column not in table:
        return []
    return sorted(v for v in table[column].dropna().astype(str).unique() if v)


def page_count(rows: int, size: int) -> int:
    """Pages of `size` rows that `rows` rows fill (1 for none: an empty page)."""
    return max(1, math.ceil(rows / size))


def page(table: pd.DataFrame, number: int, size: int) -> tuple[pd.DataFrame, int]:
    """Page `number` (from 1, clamped to the last) of `size` rows, and how many pages there are."""
    pages = page_count(len(table), size)
    number = min(max(number, 1), pages)
    return table.iloc[(number - 1) * size:number * size], pages


def duration_text(seconds: float | None) -> str:
    """12.005 -> "0:12", 3725 -> "1:02:05"; unknown -> "–"."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
