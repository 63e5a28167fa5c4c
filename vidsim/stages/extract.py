"""Stage `extract`: probe every video of the library and decode its sound to a mono WAV.

Work is cached by content hash: a file already extracted is not decoded again. A file that
cannot be read is listed with its reason in status.csv and never stops the run.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from vidsim import media
from vidsim.config import ExtractConfig, from_dict, load_params
from vidsim.io import atomic_path, file_sha256, read_json, write_json
from vidsim.stages import setup_logging

log = logging.getLogger(__name__)

STATUS_COLUMNS = ["clip", "path", "status", "reason", "sha256", "duration", "has_audio", "has_video",
                  "format_name"]


def list_videos(library: Path, extensions: tuple[str, ...]) -> list[Path]:
    """Video files under the library folder (by extension), sorted; links leading outside it skipped."""
    root = library.resolve()
    found = []
    for p in sorted(library.rglob("*")):
        if p.suffix.lower() not in extensions or not p.is_file():
            continue
        if not p.resolve().is_relative_to(root):
            log.warning("skipping %s: it links outside the library", p)
            continue
        found.append(p)
    return found


def extract_one(path: Path, cache: Path, cfg: ExtractConfig) -> tuple[dict, bool]:
    """Probe + WAV for one file, reusing the cache. Returns (status row fields, was_cached)."""
    sha = file_sha256(path)
    meta_path = cache / f"{sha}.json"
    if meta_path.exists():
        return read_json(meta_path), True
    info = media.probe(path, cfg.probe_timeout_s, cfg.max_duration_s)
    if info.has_audio:
        media.extract_audio(info, cache / f"{sha}.wav", cfg.sample_rate, cfg.timeout_s)
    row = {"sha256": sha, "duration": round(info.duration, 3), "has_audio": info.has_audio,
           "has_video": info.has_video, "format_name": info.format_name}
    write_json(meta_path, row)  # written last: its presence marks the entry complete
    return row, False


def extract_library(library: Path, out: Path, cfg: ExtractConfig) -> pd.DataFrame:
    """Fill out/cache and return the status table (one row per video file)."""
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    rows, counts = [], {"new": 0, "cached": 0, "failed": 0}
    for path in tqdm(list_videos(library, cfg.extensions), desc="extract", unit="clip"):
        clip = path.relative_to(library).as_posix()
        row = {"clip": clip, "path": str(path), "status": "ok", "reason": ""}
        try:
            meta, cached = extract_one(path, cache, cfg)
        except (media.MediaError, OSError) as exc:
            reason = exc.reason if isinstance(exc, media.MediaError) else str(exc)
            rows.append({**row, "status": "error", "reason": reason})
            counts["failed"] += 1
            log.warning("%s: %s", clip, reason)
            continue
        counts["cached" if cached else "new"] += 1
        missing = [m for m, has in (("audio", meta["has_audio"]), ("video", meta["has_video"])) if not has]
        if missing:
            row["reason"] = f"no {missing[0]} stream: indexed for {'visual' if missing[0] == 'audio' else 'audio'} only"
        rows.append({**row, **{k: meta[k] for k in STATUS_COLUMNS[4:]}})
    prune(cache, {r["sha256"] for r in rows if r["status"] == "ok"})
    log.info("extract: %(new)d new, %(cached)d cached, %(failed)d failed", counts)
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def prune(cache: Path, keep: set[str]) -> None:
    """Drop cache entries of files no longer in the library."""
    for p in cache.iterdir():
        if p.name.split(".")[0] not in keep:
            p.unlink()


def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("library", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    cfg = from_dict(ExtractConfig, load_params().get("extract"))
    if not args.library.is_dir():
        raise SystemExit(f"library folder {args.library} does not exist (params.yaml: library.dir)")
    status = extract_library(args.library, args.out, cfg)
    with atomic_path(args.out / "status.csv") as tmp:
        status.to_csv(tmp, index=False)


if __name__ == "__main__":
    main()
