"""Process-wide resources of the app (the library, the query slots) and small helpers."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from vidsim.integrity import IntegrityError
from vidsim.search import Library, NotBuilt
from vidsim.slots import FairSlots


def folder(name: str, default: str) -> Path:
    """An artifact folder, overridable by environment (VIDSIM_INDEX, VIDSIM_MODELS, VIDSIM_METRICS)."""
    return Path(os.environ.get(f"VIDSIM_{name}", default))

CONCURRENT_QUERIES = 2  # queries decoding at once, across all users of this process


def artifacts_stamp() -> tuple:
    """What changes when `dvc repro` rebuilds the library: the index manifest (written last by
    `encode`) and the models' files, by size and modification time. A running app compares it on
    every rerun and loads the new library, instead of serving the one it started with."""
    stamp = []
    for path in [folder("INDEX", "data/index") / "manifest.json",
                 *sorted(folder("MODELS", "data/models").glob("*"))]:
        try:
            st_ = path.stat()
            stamp.append((path.name, st_.st_size, st_.st_mtime_ns))
        except OSError:
            stamp.append((path.name, None, None))
    return tuple(stamp)


@st.cache_resource(show_spinner="Loading the library…", max_entries=1)
def _load_library(stamp: tuple) -> Library:
    """Index and models, loaded once per process and artifacts' stamp, shared by every session
    (max_entries=1: a rebuilt library replaces the old one in memory)."""
    # the artifacts must match dvc.lock (a tampered file is never loaded); VIDSIM_UNVERIFIED=1 opts out
    library = Library.open(folder("INDEX", "data/index"), folder("MODELS", "data/models"),
                           unverified=os.environ.get("VIDSIM_UNVERIFIED") == "1")
    library.warm_up()  # a large library's arrays, mapped in the background
    return library


def load_library() -> Library:
    """The library as the artifacts are now."""
    return _load_library(artifacts_stamp())


@st.cache_resource
def query_slots() -> FairSlots:
    """Shared by every session of this process: one query each at most, first come first served."""
    return FairSlots(CONCURRENT_QUERIES)


def session_id() -> str:
    """This browser session's id (one per tab), for fair sharing of the query slots."""
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else f"thread-{threading.get_ident()}"


def library_or_stop() -> Library:
    """The library, or a message saying which command builds it (and the page stops)."""
    try:
        return load_library()
    except IntegrityError as exc:
        st.error(f"The library cannot be served: {plain(str(exc))}")
        st.stop()
    except NotBuilt as exc:
        st.warning(f"The library has not been built yet: {plain(str(exc))}")
        st.markdown("Build the demo library, or your own folder of videos, with:")
        st.code("make demo              # installs everything and indexes the demo library\n"
                "# or, in an installed environment:\n"
                "vidsim index ~/Videos  # your own folder (or: dvc repro, see params.yaml)", language="bash")
        st.stop()


def plain(text: str) -> str:
    """Escape Markdown so that a user-chosen name is only ever displayed."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$])", r"\\\1", text)


def show_video(source: str | bytes, where=st, start: float = 0.0, autoplay: bool = False) -> None:
    """A player for an upload's bytes or a library file (from `start` seconds: a hit's matched
    span); a note instead when the file has gone or is not a media file inside the indexed library
    folder (only those are served)."""
    if isinstance(source, str):
        if not Path(source).is_file():
            where.caption(f"(the file {plain(Path(source).name)} is no longer where it was indexed)")
            return
        path = load_library().playable(source)
        if path is None:
            where.caption(f"(not shown: {plain(Path(source).name)} is not a video inside the library folder)")
            return
        source = str(path)
    where.video(source, start_time=int(start), autoplay=autoplay)
