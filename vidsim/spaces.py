"""Search spaces: how a clip becomes a point (or a set of points) and how far two clips are.

Three kinds, one per search method (see `vidsim.methods`):
- `LatentSpace`, the original's: a clip's VAE latent mean, Euclidean distance.
- `VectorSpace`, the raw-feature baseline: the standardised clip vector, Euclidean distance.
- `SegmentSpace`, the default: a clip's per-second rows (audio windows or frame embeddings),
  centred and scaled with the library's per-second statistics and L2-normalised; the distance
  is 1 - the mean over the query's seconds of the best cosine match among the clip's seconds
  (a one-sided Chamfer similarity), so a query that matches any part of a clip scores high.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from vidsim.modalities import ClipFeatures

if TYPE_CHECKING:
    from vidsim.vae import VAE


@dataclasses.dataclass
class Normaliser:
    """Standardisation learned on the library, saved with the model."""

    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,)

    @classmethod
    def fit(cls, x: np.ndarray) -> Normaliser:
        std = x.std(axis=0)
        return cls(x.mean(axis=0).astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


@dataclasses.dataclass
class VectorSpace:
    """Standardised clip-level vectors (the raw-feature baseline); no model."""

    modality: str
    rows: np.ndarray  # (M,) int64 row numbers into the index's clips
    vectors: np.ndarray  # (M, D) float32, standardised
    mean: np.ndarray  # (D,) library mean
    std: np.ndarray  # (D,) library standard deviation (1 where constant)

    @classmethod
    def build(cls, modality: str, rows: np.ndarray, x: np.ndarray) -> VectorSpace:
        norm = Normaliser.fit(x)
        return cls(modality, rows, norm(x), norm.mean, norm.std)

    def query(self, feats: ClipFeatures) -> np.ndarray | None:
        x = feats.vector(self.modality)
        return None if x is None else ((x - self.mean) / self.std).astype(np.float32)

    def member(self, j: int) -> np.ndarray:
        return self.vectors[j]

    def distances(self, q: np.ndarray) -> np.ndarray:
        return np.linalg.norm(self.vectors - q[None, :], axis=1)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"rows": self.rows, "vectors": self.vectors, "mean": self.mean, "std": self.std}


@dataclasses.dataclass
class LatentSpace:
    """The original's: VAE latent means of the clip-level inputs, Euclidean distance."""

    modality: str
    rows: np.ndarray  # (M,)
    latents: np.ndarray  # (M, L) float32
    model: VAE | None = None  # needed to place a new query
    norm: Normaliser | None = None
    loader: Callable[[], tuple[VAE, Normaliser]] | None = None  # loads model and norm on first use

    def query(self, feats: ClipFeatures) -> np.ndarray | None:
        from vidsim import vae  # noqa: PLC0415 - torch only for the original's method

        x = feats.vector(self.modality)
        if x is not None and self.model is None and self.loader is not None:
            self.model, self.norm = self.loader()
        if x is None or self.model is None or self.norm is None:
            return None
        return vae.encode(self.model, self.norm, x)[0]

    def member(self, j: int) -> np.ndarray:
        return self.latents[j]

    def distances(self, q: np.ndarray) -> np.ndarray:
        return np.linalg.norm(self.latents - q[None, :], axis=1)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"rows": self.rows, "latents": self.latents}


@dataclasses.dataclass
class SegmentSpace:
    """Per-second rows of one single modality, compared by best match per query second."""

    modality: str
    rows: np.ndarray  # (M,)
    offsets: np.ndarray  # (M + 1,) clip j owns vectors[offsets[j]:offsets[j + 1]]
    vectors: np.ndarray  # (S, D) float32, centred, scaled and L2-normalised
    center: np.ndarray  # (D,) mean library second
    scale: np.ndarray  # (D,) per-dimension scale (the std, or ones when only centring)

    @classmethod
    def build(cls, modality: str, rows: np.ndarray, offsets: np.ndarray, seconds: np.ndarray,
              standardise: bool, centre: bool = True) -> SegmentSpace:
        """Centre (and, with `standardise`, scale) with the library's per-second statistics.

        `centre=False` keeps the encoder's own space (where CLIP text embeddings live)."""
        center = seconds.mean(axis=0).astype(np.float32) if centre else np.zeros(seconds.shape[1], np.float32)
        std = seconds.std(axis=0)
        scale = np.where(std > 1e-8, std, 1.0).astype(np.float32) if standardise \
            else np.ones_like(center)
        space = cls(modality, rows, offsets, np.zeros((0, seconds.shape[1]), np.float32), center, scale)
        space.vectors = space._prepare(seconds)
        return space

    def _prepare(self, seconds: np.ndarray) -> np.ndarray:
        return _normalise_rows((seconds - self.center) / self.scale)

    def query(self, feats: ClipFeatures) -> np.ndarray | None:
        rows = feats.segments(self.modality)
        return None if rows is None else self._prepare(rows)

    def member(self, j: int) -> np.ndarray:
        return self.vectors[self.offsets[j]:self.offsets[j + 1]]

    def similarities(self, q: np.ndarray) -> np.ndarray:
        """(M,) mean over the query's rows of the best cosine with each clip's rows, in [-1, 1]."""
        sims = q @ self.vectors.T  # (Tq, S)
        best = np.maximum.reduceat(sims, self.offsets[:-1], axis=1)  # (Tq, M)
        return best.mean(axis=0)

    def distances(self, q: np.ndarray) -> np.ndarray:
        return 1.0 - self.similarities(q)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"rows": self.rows, "offsets": self.offsets, "vectors": self.vectors,
                "center": self.center, "scale": self.scale}


Space = VectorSpace | LatentSpace | SegmentSpace
KINDS = {"vector": VectorSpace, "latent": LatentSpace, "segment": SegmentSpace}


def kind_of(space: Space) -> str:
    return next(k for k, cls in KINDS.items() if isinstance(space, cls))


def from_arrays(kind: str, modality: str, arrays: dict[str, np.ndarray]) -> Space:
    """Rebuild a saved space (LatentSpace gets its model attached by the caller)."""
    return KINDS[kind](modality=modality, **arrays)
