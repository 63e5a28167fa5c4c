"""Candidates for late fusion in a large library: one FAISS index over every clip's single-modality
summaries side by side, searched with the query's weights.

Late fusion ranks clips by sum_m w_m log p_m(d_m), p_m = sigmoid(a_m + b_m d_m). Below p ~ 0.5,
log p_m is close to linear in the distance, so the fused ranking of the clips that matter is close
to that of sum_m w_m |b_m| cos_m, where cos_m is the cosine of the query's and the clip's summary
vectors (what each space's own FAISS index proposes candidates with). With every clip stored as
[summary_audio, summary_visual] (each L2-normalised), the inner product with the query
[w_a |b_a| s_a, w_v |b_v| s_v] is exactly that sum: one FAISS search proposes the fused candidates
for any weights, where two searches of both modalities plus scoring the union of their candidates
in both took 2.5 times longer at a million clips. The index holds the vectors' main components
(PCA to `index.fused_dims`, centred: the same ranking for a query, up to the components left out).
The candidates are then scored exactly in every modality (`methods.single_probabilities`), so the
proposal only decides which clips are scored.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from vidsim.calibration import Calibration
from vidsim.config import IndexConfig
from vidsim.spaces import COMPACT, SegmentSpace, Space, scratch_array

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FusedIndex:
    """A FAISS index over the clips that have every one of `modalities` (ids: positions in `rows`)."""

    modalities: tuple[str, ...]
    dims: tuple[int, ...]  # each modality's summary dimensions, in order
    rows: np.ndarray  # (M,) int64 index rows of the clips held, ascending
    ann: object  # vidsim.ann.VectorIndex, inner product

    @classmethod
    def build(cls, spaces: dict[str, Space], cfg: IndexConfig, seed: int = 0, label: str = "fused") -> FusedIndex:
        """Over the clips every space holds; each space needs summaries of unit length (cosine)."""
        from vidsim import ann  # noqa: PLC0415 - faiss only for large libraries

        modalities = tuple(spaces)
        rows = spaces[modalities[0]].rows
        for space in spaces.values():
            rows = np.intersect1d(rows, space.rows)
        dims = tuple(int(space.summary(space.member(0)).shape[0]) for space in spaces.values())
        # side by side in a scratch file: at a million clips 1.7 GB the kernel can page out
        vectors = scratch_array((len(rows), sum(dims)), COMPACT)
        start = 0
        for space, dim in zip(spaces.values(), dims):
            if len(space.rows) == len(rows) and isinstance(space, SegmentSpace):
                space.summaries(out=vectors[:, start:start + dim])
            else:
                summaries = space.summaries()
                vectors[:, start:start + dim] = summaries if len(space.rows) == len(rows) else \
                    summaries[space.positions(rows)[0]]
            start += dim
        index = ann.VectorIndex.build(vectors, "ip", cfg, seed, label, fused_factory(cfg, len(rows), sum(dims)))
        del vectors
        index.candidates = cfg.fused_candidates
        index.set_nprobe(cfg.fused_nprobe)
        return cls(modalities, dims, rows, index)

    def vector(self, summaries: dict[str, np.ndarray], weights: dict[str, float],
               calibrations: dict[str, Calibration]) -> np.ndarray:
        """(D,) the query: each modality's unit summary times its weight and its calibration's
        slope (the probability's sensitivity to distance); zeros for a modality left out."""
        parts = []
        for m, dim in zip(self.modalities, self.dims):
            s = summaries.get(m)
            w = weights.get(m, 0.0)
            if s is None or w <= 0:
                parts.append(np.zeros(dim, np.float32))
                continue
            parts.append(np.asarray(s, np.float32) * w * slope(calibrations.get(m)))
        return np.concatenate(parts)

    def candidates(self, vector: np.ndarray, c: int) -> np.ndarray:
        """(<= c,) index rows of the clips proposed, ascending."""
        ids = self.ann.search(vector, max(c, self.ann.candidates))[0]
        return np.sort(self.rows[ids[ids >= 0]])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"rows": self.rows}


def fused_factory(cfg: IndexConfig, n: int, dim: int) -> str:
    """The FusedIndex's FAISS factory: the spaces' own (`ann.resolve_factory`) after a PCA to
    `cfg.fused_dims` dimensions (a multiple of 16) when the vectors have more. Its inner product
    is then that of the vectors' main components: the proposal ranks by what most tells clips
    apart, and scans a third of the codes per list at a million clips (840 -> 256 dimensions)."""
    from vidsim import ann  # noqa: PLC0415 - faiss only for large libraries

    factory = ann.resolve_factory(cfg.factory, n)
    out = -(-cfg.fused_dims // ann.ALIGN) * ann.ALIGN
    return f"PCA{out},{factory}" if 0 < out < dim else factory


def slope(cal: Calibration | None) -> float:
    """How fast a modality's log-probability falls with distance, where probabilities are small:
    |b| of a logistic calibration; 1 / scale^2 of a kernel (-d^2 / 2 s^2 at d ~ s)."""
    if cal is None:
        return 1.0
    if cal.kind == "logistic" and cal.b < 0:
        return -cal.b
    return 1.0 / max(cal.scale, 1e-6) ** 2
