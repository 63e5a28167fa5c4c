"""Extract, for a folder of videos: probe each file, decode its sound to a mono WAV, take a thumbnail.

Work is cached by content hash: a file already extracted is not decoded again. A file that
cannot be read is listed with its reason in status.csv and never stops the run.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from vidsim import media
from vidsim.config import ExtractConfig
from vidsim.io import file_sha256, read_json, write_json
from vidsim.progress import progress

log = logging.getLogger(__name__)

META_COLUMNS = ["sha256", "duration", "has_audio", "has_video", "format_name", "audio_stream", "video_stream"]
LABEL_COLUMNS = ["audio_label", "visual_label"]
STATUS_COLUMNS = ["clip", "path", "status", "reason", *META_COLUMNS, *LABEL_COLUMNS]
THUMBNAIL_VERSION = 2  # how thumbnails are made (media.thumbnail); a cached one of another version is made again


def list_videos(library: Path, extensions: tuple[str, ...]) -> list[Path]:
    """Video files under the library folder (by extension), sorted."""
    return sorted(p for p in library.rglob("*") if p.suffix.lower() in extensions and not p.is_dir())


def refusal(path: Path, root: Path) -> str | None:
    """Why a listed file is not read at all (a link leading outside the library), or None."""
    if not path.resolve().is_relative_to(root):
        return "links outside the library folder: not read"
    if not path.is_file():
        return "not a regular file"
    return None


def extract_one(path: Path, cache: Path, thumbs: Path, cfg: ExtractConfig) -> tuple[dict, bool]:
    """Probe, WAV and thumbnail for one file, reusing the cache.

    Returns (status row fields, was_cached).
    """
    before = file_state(path)
    media.check_size(path, before[0], cfg)  # before hashing: a huge (or sparse) file costs nothing
    sha = file_sha256(path)
    with _lock(sha):  # two copies of one file share cache entries: one extracts, one finds it
        meta, cached = _extract(path, sha, cache, thumbs, cfg)
    check_unchanged(path, before)
    return meta, cached


def file_state(path: Path) -> tuple[int, int, int, int]:
    """(size, mtime, inode, device) of the file a name leads to now."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev


def check_unchanged(path: Path, before: tuple[int, int, int, int]) -> None:
    """MediaError when the name no longer leads to the file (and bytes) read before: what was
    hashed is what was decoded."""
    try:
        now = file_state(path)
    except OSError:
        now = None
    if now != before:
        raise media.MediaError(path, "the file changed while it was being indexed (replaced, edited or "
                                     "linked elsewhere): run the pipeline again")


def check_content(path: Path, sha256: str) -> tuple[int, int, int, int]:
    """MediaError unless the file still holds the bytes extract hashed; returns its state then."""
    before = file_state(path)
    if file_sha256(path) != sha256:
        raise media.MediaError(path, "the file is not the one extract read (replaced, edited or linked "
                                     "elsewhere since): run the pipeline again")
    return before


def _lock(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _extract(path: Path, sha: str, cache: Path, thumbs: Path, cfg: ExtractConfig) -> tuple[dict, bool]:
    meta_path, thumb = cache / f"{sha}.json", thumbs / f"{sha}.jpg"
    if meta_path.exists():
        meta = read_json(meta_path)
        if set(META_COLUMNS) <= set(meta) and (
                not meta["has_video"] or (thumb.exists() and meta.get("thumbnail") == THUMBNAIL_VERSION)):
            return meta, True
    info = media.probe(path, cfg)
    if info.has_audio and not (cache / f"{sha}.wav").exists():
        media.extract_audio(info, cache / f"{sha}.wav", cfg)
    if info.has_video:
        media.thumbnail(info, thumb, cfg)
    row = {"sha256": sha, "duration": round(info.duration, 3), "has_audio": info.has_audio,
           "has_video": info.has_video, "format_name": info.format_name,
           "audio_stream": info.audio_stream, "video_stream": info.video_stream, "thumbnail": THUMBNAIL_VERSION}
    write_json(meta_path, row)  # written last: its presence marks the entry complete
    return row, False


def read_labels(path: Path) -> dict[str, dict[str, str]]:
    """Optional labels.csv in the library folder: file -> {audio_label, visual_label}."""
    if not path.is_file():
        return {}
    table = pd.read_csv(path, keep_default_na=False, dtype=str)
    missing = {"file", *LABEL_COLUMNS} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {', '.join(sorted(missing))}")
    return table.set_index("file")[LABEL_COLUMNS].to_dict("index")


def extract_library(library: Path, out: Path, cfg: ExtractConfig,
                    labels: dict[str, dict[str, str]] | None = None) -> pd.DataFrame:
    """Fill out/cache (probe + WAV) and out/thumbs; return the status table, one row per video."""
    cache, thumbs = out / "cache", out / "thumbs"
    cache.mkdir(parents=True, exist_ok=True)
    thumbs.mkdir(exist_ok=True)
    labels = labels or {}
    rows, counts = [], {"new": 0, "cached": 0, "failed": 0}
    root = library.resolve()
    paths = list_videos(library, cfg.extensions)

    def one(path: Path) -> tuple[dict, str]:
        clip = path.relative_to(library).as_posix()
        if not _utf8(str(path)):  # tables hold text: such a name cannot be written, only shown
            clip = _shown(clip)
            log.warning("%s: %s", clip, NOT_UTF8)
            return {"clip": clip, "path": _shown(str(path)), "status": "error", "reason": NOT_UTF8,
                    **dict.fromkeys(LABEL_COLUMNS, "")}, "failed"
        row = {"clip": clip, "path": str(path), "status": "ok", "reason": "",
               **labels.get(clip, dict.fromkeys(LABEL_COLUMNS, ""))}
        try:
            if reason := refusal(path, root):
                raise media.MediaError(path, reason)
            meta, cached = extract_one(path, cache, thumbs, cfg)
        except (media.MediaError, OSError) as exc:
            reason = exc.reason if isinstance(exc, media.MediaError) else str(exc)
            log.warning("%s: %s", clip, reason)
            return {**row, "status": "error", "reason": reason}, "failed"
        missing = [m for m, has in (("audio", meta["has_audio"]), ("video", meta["has_video"])) if not has]
        if missing:
            row["reason"] = f"no {missing[0]} stream: indexed for {'visual' if missing[0] == 'audio' else 'audio'} only"
        return {**row, **{k: meta[k] for k in META_COLUMNS}}, "cached" if cached else "new"

    # Threads are enough: the work happens in ffmpeg children and in hashing, which frees the GIL.
    with ThreadPoolExecutor(cfg.pool_size, thread_name_prefix="vidsim-extract") as pool:
        for row, outcome in progress(pool.map(one, paths), total=len(paths), desc="extract", unit="clip"):
            rows.append(row)
            counts[outcome] += 1
    keep = {r["sha256"] for r in rows if r["status"] == "ok"}
    prune(cache, keep)
    prune(thumbs, keep)
    log.info("extract: %(new)d new, %(cached)d cached, %(failed)d failed", counts)
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


NOT_UTF8 = "the file name is not valid UTF-8: rename the file to index it"


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:  # undecodable bytes of a file name (surrogate escapes)
        return False


def _shown(text: str) -> str:
    """A name with undecodable bytes, as text (each bad byte as U+FFFD)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def prune(cache: Path, keep: set[str]) -> None:
    """Drop cache entries of files no longer in the library."""
    for p in cache.iterdir():
        if p.name.split(".")[0] not in keep:
            p.unlink()
