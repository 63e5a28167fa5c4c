"""The one entry point for search: load the pipeline's artifacts once, then query by video file,
by library clip, or by features. Used by the CLI, the app and the tests."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from vidsim import vae
from vidsim.clip import ClipFeatures, Encoder, StepCallback, extract_and_featurize
from vidsim.config import MODALITIES, AudioConfig, ExtractConfig, SearchConfig, from_dict
from vidsim.features import visual
from vidsim.index import Index
from vidsim.integrity import IntegrityError, verify_outputs
from vidsim.io import read_status
from vidsim.scores import knn, probability

DEFAULT_INDEX = Path("data/index")
DEFAULT_MODELS = Path("data/models")


class NotBuilt(FileNotFoundError):
    """The pipeline has not produced the artifacts yet."""


@dataclasses.dataclass(frozen=True)
class Hit:
    rank: int  # 1-based
    clip: str
    path: str
    distance: float  # Euclidean, in latent space
    probability: float  # probability of similarity, 0..1


@dataclasses.dataclass
class QueryResult:
    modality: str
    hits: list[Hit]
    latent: np.ndarray  # (L,) where the query sits in the modality's latent space

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([dataclasses.asdict(h) for h in self.hits])


class Library:
    """A built library: index, per-modality VAEs, and the settings its features were made with."""

    def __init__(self, index: Index, models: dict[str, tuple[vae.VAE, vae.Normaliser]],
                 index_dir: Path = DEFAULT_INDEX):
        self.index = index
        self.index_dir = Path(index_dir)
        self.models = models
        m = index.manifest
        self.audio_cfg = from_dict(AudioConfig, m["audio"])
        self.extract_cfg = from_dict(ExtractConfig, m["extract"])
        self.encoder_info = visual.EncoderInfo(**m["encoder"])
        self.search_cfg = from_dict(SearchConfig, m["search"])
        self.default_k = self.search_cfg.k
        self.default_score = self.search_cfg.score

    @classmethod
    def load(cls, index_dir: str | os.PathLike = DEFAULT_INDEX,
             models_dir: str | os.PathLike = DEFAULT_MODELS,
             verify_root: str | os.PathLike | None = None) -> Library:
        """Load the index and models.

        Args:
            verify_root: a DVC project root; when given, both folders must match its dvc.lock
                (IntegrityError otherwise), so a tampered file is never loaded.
        """
        index_dir, models_dir = Path(index_dir), Path(models_dir)
        if not (index_dir / "index.npz").exists():
            raise NotBuilt(f"no index in {index_dir}: run `dvc repro` (or `make demo`) first")
        if verify_root is not None:
            verify_outputs(verify_root, [index_dir, models_dir])
        try:
            index = Index.load(index_dir)
        except (ValueError, KeyError, OSError) as exc:  # e.g. a pickled object where arrays belong
            raise IntegrityError(f"{index_dir} is not a readable index ({exc}): rebuild it with `dvc repro`") from None
        models = {}
        for modality in index.latents:
            path = models_dir / f"{modality}.safetensors"
            if not path.exists():
                raise NotBuilt(f"model {path} is missing: run `dvc repro`")
            try:
                model, norm, _ = vae.load(path)
            except Exception as exc:  # safetensors raises its own kinds; nothing is unpickled
                raise IntegrityError(f"{path} is not a readable model ({type(exc).__name__}): "
                                     "rebuild it with `dvc repro`") from None
            models[modality] = (model, norm)
        return cls(index, models, index_dir)

    @property
    def modalities(self) -> list[str]:
        return [m for m in MODALITIES if m in self.index.latents]

    @cached_property
    def encoder(self) -> Encoder:
        """The image encoder the library was built with (loaded on first use)."""
        info = self.encoder_info
        model, preprocess, _ = visual.create_encoder(info.model, info.pretrained)
        return Encoder(model, preprocess, info)

    def featurize(self, path: str | os.PathLike, on_step: StepCallback | None = None) -> ClipFeatures:
        """Extract and featurize one video exactly as the pipeline does, in a private temp dir.

        Raises:
            MediaError: the file is not a usable video (the message names the file and why).
        """
        cfg = dataclasses.replace(
            self.extract_cfg, max_duration_s=min(self.extract_cfg.max_duration_s, self.search_cfg.max_query_s))
        with tempfile.TemporaryDirectory(prefix="vidsim-query-") as tmp:
            _, feats = extract_and_featurize(path, tmp, self.encoder, self.audio_cfg, cfg, on_step)
        return feats

    def query(self, path: str | os.PathLike, modality: str = "audio_visual", k: int | None = None,
              score: str | None = None) -> QueryResult:
        """The k library clips nearest to a video file."""
        return self.query_features(self.featurize(path), modality, k, score)

    def query_features(self, feats: ClipFeatures, modality: str, k: int | None = None,
                       score: str | None = None) -> QueryResult:
        self._check(modality)
        x = feats.vector(modality)
        if x is None:
            missing = "audio" if feats.audio is None else "video"
            raise ValueError(f"the query has no {missing} stream, so it cannot be searched by {modality}")
        model, norm = self.models[modality]
        return self._search(modality, vae.encode(model, norm, x)[0], k, score)

    def query_clip(self, clip: str, modality: str = "audio_visual", k: int | None = None,
                   score: str | None = None) -> QueryResult:
        """Use a library clip as the query (it is its own first hit)."""
        self._check(modality)
        names = self.index.clip_names(modality)
        if clip not in names:
            raise KeyError(f"{clip!r} is not in the {modality} index")
        return self._search(modality, self.index.latents[modality][names.index(clip)], k, score)

    def _check(self, modality: str) -> None:
        if modality not in self.index.latents:
            raise ValueError(f"no {modality} index; available: {', '.join(self.modalities)}")

    def _search(self, modality: str, z: np.ndarray, k: int | None, score: str | None) -> QueryResult:
        latents = self.index.latents[modality]
        idx, dist = knn(latents, z, k or self.default_k)
        probs = probability(dist, score or self.default_score, self.index.scales[modality])
        clips = self.index.clips.iloc[self.index.rows[modality][idx]]
        hits = [Hit(rank=r + 1, clip=c, path=p, distance=float(d), probability=float(pr))
                for r, (c, p, d, pr) in enumerate(zip(clips["clip"], clips["path"], dist, probs))]
        return QueryResult(modality, hits, z)

    def clip_info(self, clip: str) -> pd.Series:
        """The index row of a library clip (path, sha256, labels, ...)."""
        match = self.index.clips[self.index.clips["clip"] == clip]
        if match.empty:
            raise KeyError(f"{clip!r} is not in the library")
        return match.iloc[0]

    def thumbnail(self, clip: str) -> Path | None:
        """A JPEG frame of a library clip, when it has video."""
        path = self.index_dir / "thumbs" / f"{self.clip_info(clip)['sha256']}.jpg"
        return path if path.exists() else None

    def points(self, modality: str) -> pd.DataFrame:
        """The library in a modality's latent space: clip, labels, and z0..z{L-1}."""
        self._check(modality)
        clips = self.index.clips.iloc[self.index.rows[modality]].reset_index(drop=True)
        z = self.index.latents[modality]
        coords = pd.DataFrame(z, columns=[f"z{i}" for i in range(z.shape[1])])
        return pd.concat([clips[["clip", "path", "audio_label", "visual_label"]], coords], axis=1)

    def status(self) -> pd.DataFrame:
        """The per-file status table of the last run (file, ok/error, reason)."""
        path = self.index_dir / "status.csv"
        return read_status(path) if path.exists() else pd.DataFrame()
