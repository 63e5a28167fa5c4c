"""Running a query for the app: a private copy of the upload, bounded concurrency, progress by step."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from common import plain, query_slots, session_id

from vidsim.clip import ClipFeatures
from vidsim.media import MediaError
from vidsim.search import Library
from vidsim.slots import Busy
from vidsim.uploads import private_copy

STEPS = ["probe", "audio", "frames", "features", "search"]
BUSY_WAIT_S = 60


class QueryFailed(Exception):
    """A message for the user; the app goes on."""


def featurize_upload(lib: Library, data: bytes, display_name: str) -> ClipFeatures:
    """Featurize uploaded bytes from a private temp dir under a fixed name; always cleaned up.

    Raises:
        QueryFailed: with a message that names the upload and the reason.
    """
    with private_copy(data) as path:
        return featurize_with_progress(lib, path, display_name)


def featurize_with_progress(lib: Library, path: Path, display_name: str) -> ClipFeatures:
    try:
        with query_slots().hold(session_id(), BUSY_WAIT_S):
            return _featurize(lib, path, display_name)
    except Busy as exc:
        raise QueryFailed(str(exc)[:1].upper() + str(exc)[1:] + ".") from None


def _featurize(lib: Library, path: Path, display_name: str) -> ClipFeatures:
    bar = st.progress(0.0, text="starting…")

    def on_step(step: str) -> None:
        i = STEPS.index(step)
        bar.progress(i / len(STEPS), text=f"step {i + 1}/{len(STEPS)}: {step}")

    try:
        feats = lib.featurize(path, on_step=on_step)
    except MediaError as exc:
        raise QueryFailed(f"Could not use **{plain(display_name)}**: {plain(exc.reason)}") from None
    on_step("search")
    bar.empty()
    return feats
