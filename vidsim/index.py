"""The searchable library: clip metadata, every method's search spaces and calibrations, saved as
`.npz` + CSV + JSON and loaded without pickle."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd

from vidsim.calibration import Calibration
from vidsim.io import atomic_path, read_json, write_json
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
        with atomic_path(out / CLIPS_FILE) as tmp:
            self.clips.to_csv(tmp, index=False)
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
        clips = pd.read_csv(d / CLIPS_FILE, keep_default_na=False,
                            dtype={"clip": str, "path": str, "sha256": str,
                                   "audio_label": str, "visual_label": str})
        return cls(clips, spaces, calibrations, manifest)

    def space(self, method: str, modality: str) -> Space:
        key = f"{method}.{modality}"
        if key not in self.spaces:
            raise ValueError(f"the index has no {modality} space for method {method!r}")
        return self.spaces[key]
