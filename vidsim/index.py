"""The searchable library: clip metadata, every method's search spaces and calibrations, saved as
`.npz` + CSV + JSON and loaded without pickle."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd

from vidsim.calibration import Calibration
from vidsim.io import atomic_path, read_json, read_table, write_json, write_table
from vidsim.spaces import Space, from_arrays, kind_of

INDEX_FILE = "index.npz"
CLIPS_FILE = "clips.csv"
MANIFEST_FILE = "manifest.json"


@dataclasses.dataclass
class Index:
    clips: pd.DataFrame  # one row per indexed clip: clip, path, sha256, duration, has_audio, has_video, labels
    spaces: dict[str, Space]  # "<method>.<modality>" -> search space
    calibrations: dict[str, Calibration]  # same keys
    manifest: dict  # encoder, feature and search settings the query path must reuse

    def save(self, out_dir: str | os.PathLike) -> None:
        out = Path(out_dir)
        arrays = {f"{key}.{name}": value for key, space in self.spaces.items()
                  for name, value in space.arrays().items()}
        with atomic_path(out / INDEX_FILE) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        write_table(self.clips, out / CLIPS_FILE)
        write_json(out / MANIFEST_FILE, {
            **self.manifest,
            "spaces": {key: kind_of(s) for key, s in self.spaces.items()},
            "calibrations": {key: c.to_dict() for key, c in self.calibrations.items()}})

    @classmethod
    def load(cls, index_dir: str | os.PathLike) -> Index:
        d = Path(index_dir)
        manifest = read_json(d / MANIFEST_FILE)
        kinds = manifest.pop("spaces")
        calibrations = {k: Calibration(**v) for k, v in manifest.pop("calibrations").items()}
        spaces = {}
        with np.load(d / INDEX_FILE, allow_pickle=False) as npz:
            for key, kind in kinds.items():
                modality = key.split(".", 1)[1]
                prefix = key + "."
                spaces[key] = from_arrays(kind, modality, {n[len(prefix):]: npz[n] for n in npz.files
                                                           if n.startswith(prefix)})
        clips = read_table(d / CLIPS_FILE)
        for col, kind in (("duration", float), ("has_audio", bool), ("has_video", bool)):
            if col in clips:
                clips[col] = clips[col] == "True" if kind is bool else pd.to_numeric(clips[col], errors="coerce")
        return cls(clips, spaces, calibrations, manifest)

    def space(self, method: str, modality: str) -> Space:
        key = f"{method}.{modality}"
        if key not in self.spaces:
            raise ValueError(f"the index has no {modality} space for method {method!r}")
        return self.spaces[key]
