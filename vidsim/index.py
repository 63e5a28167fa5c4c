"""The searchable library: clip metadata, every method's search spaces (with their FAISS indexes
when large, and late fusion's own `FusedIndex`) and calibrations, saved as one `.npy` per array,
FAISS files, CSV and JSON, and loaded without pickle, the arrays memory-mapped."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from vidsim.calibration import Calibration
from vidsim.config import IndexConfig, from_dict
from vidsim.fusedindex import FusedIndex
from vidsim.io import atomic_path, close_array, open_array, read_json, read_table, write_json, write_table
from vidsim.spaces import CHUNK, COMPACT, Space, from_arrays, kind_of, to_float16

ARRAYS_DIR = "arrays"
CLIPS_FILE = "clips.csv"
MANIFEST_FILE = "manifest.json"
MMAP_MIN = 64 << 20  # arrays larger than this stay memory-mapped (row numbers and offsets do not)
PAGE_IN_SHARE = 0.5  # `page_in` maps arrays of up to this share of the machine's memory
PAGE_IN_CHUNK = 64 << 20  # bytes mapped per step (the GIL is let go between steps)


@dataclasses.dataclass
class Index:
    clips: pd.DataFrame  # one row per indexed clip: clip, path, sha256, duration, has_audio, has_video, labels
    spaces: dict[str, Space]  # "<method>.<modality>" -> search space
    calibrations: dict[str, Calibration]  # same keys
    manifest: dict  # encoder, feature, search and index settings the query path must reuse
    fused: dict[str, FusedIndex] = dataclasses.field(default_factory=dict)  # method -> late fusion's candidates

    def save(self, out_dir: str | os.PathLike) -> None:
        """Write every array once (spaces over the same rows share them: visual and text), each
        space's FAISS index, the clips table and the manifest last."""
        out = Path(out_dir)
        arrays = out / ARRAYS_DIR
        if arrays.exists():
            shutil.rmtree(arrays)
        arrays.mkdir(parents=True)
        written: dict[int, str] = {}  # id(array) -> file name
        spaces = {}
        for key, space in self.spaces.items():
            files = {}
            for name, value in space.arrays().items():
                if id(value) not in written:
                    written[id(value)] = f"{key}.{name}.npy"
                    compact = space.ann is not None and name in ("seconds", "vectors")
                    _write_array(arrays / written[id(value)], value, COMPACT if compact else None)
                files[name] = written[id(value)]
            entry = {"kind": kind_of(space), "arrays": files}
            if space.ann is not None:
                entry["faiss"] = f"{key}.faiss"
                space.ann.save(arrays / entry["faiss"])
            if getattr(space, "second_ann", None) is not None:
                entry["seconds_faiss"] = f"{key}.seconds.faiss"
                space.second_ann.save(arrays / entry["seconds_faiss"])
            spaces[key] = entry
        fused = {}
        for method, proposer in self.fused.items():
            _write_array(arrays / f"{method}.fused.rows.npy", proposer.rows)
            proposer.ann.save(arrays / f"{method}.fused.faiss")
            fused[method] = {"modalities": list(proposer.modalities), "dims": list(proposer.dims),
                             "rows": f"{method}.fused.rows.npy", "faiss": f"{method}.fused.faiss"}
        write_table(self.clips, out / CLIPS_FILE)
        write_json(out / MANIFEST_FILE, {
            **self.manifest, "spaces": spaces, "fused": fused,
            "calibrations": {key: c.to_dict() for key, c in self.calibrations.items()}})

    @classmethod
    def load(cls, index_dir: str | os.PathLike) -> Index:
        """Read an index; arrays are memory-mapped (pages are read when a search touches them)."""
        from vidsim import ann  # noqa: PLC0415 - faiss only when an index has a FAISS file

        d = Path(index_dir)
        manifest = read_json(d / MANIFEST_FILE)
        entries = manifest.pop("spaces")
        calibrations = {k: Calibration(**v) for k, v in manifest.pop("calibrations").items()}
        cfg = from_dict(IndexConfig, manifest.get("index"))
        loaded: dict[str, np.ndarray] = {}
        spaces = {}
        for key, entry in entries.items():
            arrays = {}
            for name, file in entry["arrays"].items():
                if file not in loaded:
                    a = np.load(_inside(d / ARRAYS_DIR, file), mmap_mode="r", allow_pickle=False)
                    loaded[file] = a if a.nbytes > MMAP_MIN else np.array(a)  # small ones in memory
                arrays[name] = loaded[file]
            space = from_arrays(entry["kind"], key.split(".", 1)[1], arrays)
            if entry.get("faiss"):
                space.ann = ann.VectorIndex.load(_inside(d / ARRAYS_DIR, entry["faiss"]), space.metric,
                                                 cfg.nprobe, cfg.candidates)
            if entry.get("seconds_faiss"):  # read when an excerpt query first votes (or by `warm_up`)
                space.second_ann = ann.VectorIndex.load(_inside(d / ARRAYS_DIR, entry["seconds_faiss"]), "ip",
                                                        cfg.segment_nprobe, cfg.segment_candidates, lazy=True)
                space.second_hits = cfg.segment_hits
            spaces[key] = space
        fused = {}
        for method, entry in manifest.pop("fused", {}).items():
            rows = np.load(_inside(d / ARRAYS_DIR, entry["rows"]), allow_pickle=False)
            proposer = ann.VectorIndex.load(_inside(d / ARRAYS_DIR, entry["faiss"]), "ip", cfg.fused_nprobe,
                                            cfg.fused_candidates)
            fused[method] = FusedIndex(tuple(entry["modalities"]), tuple(entry["dims"]), rows, proposer)
        clips = read_table(d / CLIPS_FILE)
        for col, kind in (("duration", float), ("has_audio", bool), ("has_video", bool)):
            if col in clips:
                clips[col] = clips[col] == "True" if kind is bool else pd.to_numeric(clips[col], errors="coerce")
        return cls(clips, spaces, calibrations, manifest, fused)

    def mapped(self) -> list[np.memmap]:
        """The memory-mapped arrays of the spaces, each once."""
        arrays = {id(a): a for space in self.spaces.values() for a in space.arrays().values()
                  if isinstance(a, np.memmap)}
        return list(arrays.values())

    def read_second_indexes(self) -> int:
        """Read the per-second FAISS indexes that `load` left to their first use (only a query
        shorter than the library's longest clip votes through them); how many were read."""
        lazy = [s.second_ann for s in self.spaces.values()
                if getattr(s, "second_ann", None) is not None and not s.second_ann.loaded]
        for index in lazy:
            index.index  # noqa: B018 - reads it
        return len(lazy)

    def page_in(self, share: float = PAGE_IN_SHARE) -> int:
        """Map every page of the memory-mapped arrays into this process (touching one byte per
        page), when together they take at most `share` of the machine's memory; bytes mapped.

        A query of a large library reads its candidates' rows from all over the per-second arrays,
        and each page it is the first to touch costs a page fault even when the page cache holds it:
        at a million clips, reading 400 candidates' seconds took 2.9 ms before and 0.9 ms after
        (`vidsim.bench --scale`). A server does this once, in the background (`Library.warm_up`)."""
        arrays = self.mapped()
        total = sum(a.nbytes for a in arrays)
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if not total or total > share * memory:
            return 0
        step = os.sysconf("SC_PAGE_SIZE")
        for a in arrays:
            flat = a.reshape(-1).view(np.uint8)
            for start in range(0, len(flat), PAGE_IN_CHUNK):
                int(flat[start:start + PAGE_IN_CHUNK:step].max())
        return total

    def space(self, method: str, modality: str) -> Space:
        key = f"{method}.{modality}"
        if key not in self.spaces:
            raise ValueError(f"the index has no {modality} space for method {method!r}")
        return self.spaces[key]


def _write_array(path: Path, value: np.ndarray, dtype=None) -> None:
    """np.save, or, with `dtype`, the array converted chunk by chunk into a memory-mapped file
    (a large memory-mapped source is never held in memory whole)."""
    if dtype is None or value.dtype == dtype:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.asarray(value), allow_pickle=False)
        return
    out = open_array(path, value.shape, dtype)
    for a in range(0, len(value), CHUNK * 4):
        chunk = value[a:a + CHUNK * 4]
        out[a:a + CHUNK * 4] = to_float16(chunk) if dtype == COMPACT else chunk
    close_array(out)


def built(index_dir: str | os.PathLike) -> bool:
    """Whether a folder holds an index (its manifest is written last)."""
    return (Path(index_dir) / MANIFEST_FILE).exists()


def _inside(folder: Path, name: str) -> Path:
    """A file the manifest names, refused unless it is a plain name inside the index's folder."""
    if Path(name).name != name or name in (".", ".."):
        raise ValueError(f"the index manifest names {name!r}, not a file of {folder}")
    return folder / name
