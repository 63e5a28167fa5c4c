"""The searchable library: clip metadata plus latent means per modality, loaded without pickle."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd

from vidsim.config import MODALITIES
from vidsim.io import atomic_path, read_json, write_json

INDEX_FILE = "index.npz"
CLIPS_FILE = "clips.csv"
MANIFEST_FILE = "manifest.json"


@dataclasses.dataclass
class Index:
    clips: pd.DataFrame  # one row per indexed clip: clip, path, sha256, duration, has_audio, has_video
    rows: dict[str, np.ndarray]  # modality -> (M,) int row numbers into `clips`
    latents: dict[str, np.ndarray]  # modality -> (M, L) float32 latent means
    scales: dict[str, float]  # modality -> kernel width for the probability of similarity
    manifest: dict  # encoder, feature and score settings the query path must reuse

    def save(self, out_dir: str | os.PathLike) -> None:
        out = Path(out_dir)
        arrays = {}
        for m in self.latents:
            arrays[f"{m}.rows"] = self.rows[m].astype(np.int64)
            arrays[f"{m}.latents"] = self.latents[m].astype(np.float32)
        with atomic_path(out / INDEX_FILE) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        with atomic_path(out / CLIPS_FILE) as tmp:
            self.clips.to_csv(tmp, index=False)
        write_json(out / MANIFEST_FILE, {**self.manifest, "scales": self.scales})

    @classmethod
    def load(cls, index_dir: str | os.PathLike) -> Index:
        d = Path(index_dir)
        with np.load(d / INDEX_FILE, allow_pickle=False) as npz:
            rows = {m: npz[f"{m}.rows"] for m in MODALITIES if f"{m}.rows" in npz}
            latents = {m: npz[f"{m}.latents"] for m in rows}
        clips = pd.read_csv(d / CLIPS_FILE, keep_default_na=False,
                            dtype={"clip": str, "path": str, "sha256": str,
                                   "audio_label": str, "visual_label": str})
        manifest = read_json(d / MANIFEST_FILE)
        return cls(clips, rows, latents, manifest.pop("scales"), manifest)

    def clip_names(self, modality: str) -> list[str]:
        return self.clips["clip"].iloc[self.rows[modality]].tolist()
