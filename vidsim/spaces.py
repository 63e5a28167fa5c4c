"""Search spaces: how a clip becomes a point (or a set of points) and how far two clips are.

Three kinds, one per search method (see `vidsim.methods`):
- `LatentSpace`, the original's: a clip's VAE latent mean, Euclidean distance.
- `VectorSpace`, the raw-feature baseline: the standardised clip vector, Euclidean distance.
- `SegmentSpace`, the default: a clip's per-second rows (audio windows or frame embeddings),
  centred and scaled with the library's per-second statistics and L2-normalised; the distance
  is 1 - the mean over the query's seconds of the best cosine match among the clip's seconds
  (a one-sided Chamfer similarity), within the clip's best stretch as long as the query when the
  clip is longer, so a query that matches any part of a clip scores high.

Every space answers `nearest(q, c)`: a scan of all its clips when it is small, or, when it has a
FAISS index (`vidsim.ann`, above `index.exact_max` clips), the index's candidates re-ranked with
the space's own exact distance. Large spaces keep their vectors as float16, memory-mapped.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from vidsim.modalities import ClipFeatures

if TYPE_CHECKING:
    from vidsim.ann import VectorIndex
    from vidsim.config import IndexConfig
    from vidsim.vae import VAE

CHUNK = 65536  # rows processed at once by the builds: bounds their memory on large libraries
COMPACT = np.float16  # storage of the vectors of spaces with a FAISS index
MAX_VOTERS = 32  # query seconds (evenly spaced) that search the per-second index
STATS_THREADS = 4  # chunks `column_stats` reads at once (each ~0.4 GB of scratch at 512 columns)


def column_stats(x: np.ndarray, copy: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per column. Arrays longer than CHUNK rows are read once, in chunks whose means
    and squared deviations (float32 deviations, float64 sums) are merged as Chan et al.'s parallel
    variance: a memory-mapped array is never copied whole, nor read twice (a million clips'
    seconds are 13 GB). Chunks are read by a thread per core, up to STATS_THREADS (NumPy's
    reductions use one core), and merged in order. With `copy` (an array of x's shape), each
    chunk is also written into it, cast to its dtype, as it is read, and the statistics are those
    of the copy. One chunk without a copy gives NumPy's own x.mean(0), x.std(0)."""
    if len(x) <= CHUNK and copy is None:
        return x.mean(axis=0), x.std(axis=0)

    def moments(a: int) -> tuple[int, np.ndarray, np.ndarray]:
        chunk = x[a:a + CHUNK]
        if copy is not None:
            chunk = to_float16(chunk) if copy.dtype == COMPACT else np.asarray(chunk, copy.dtype)
            copy[a:a + len(chunk)] = chunk
        chunk = to_float32(chunk)
        chunk_mean = chunk.sum(axis=0, dtype=np.float64) / len(chunk)
        deviations = chunk - chunk_mean.astype(np.float32)
        deviations *= deviations
        return len(chunk), chunk_mean, deviations.sum(axis=0, dtype=np.float64)

    n, mean, m2 = 0, np.zeros(x.shape[1], np.float64), np.zeros(x.shape[1], np.float64)
    with ThreadPoolExecutor(min(STATS_THREADS, os.cpu_count() or 1), thread_name_prefix="vidsim-stats") as pool:
        for k, chunk_mean, chunk_m2 in pool.map(moments, range(0, len(x), CHUNK)):
            delta = chunk_mean - mean
            m2 += chunk_m2 + delta ** 2 * (n * k / (n + k))
            mean += delta * (k / (n + k))
            n += k
    return mean, np.sqrt(m2 / n)


def scratch_array(shape: tuple[int, ...], dtype) -> np.memmap:
    """A new array in an unlinked temporary file (`TMPDIR`), memory-mapped: pages the kernel can
    write out and drop, so building a large library's index needs no memory of its arrays' size (a
    million clips' raw vectors: 2.6 GB). The file lives as long as the array."""
    with tempfile.TemporaryFile(prefix="vidsim-") as fh:
        fh.truncate(int(np.prod(shape)) * np.dtype(dtype).itemsize)
        return np.memmap(fh, dtype=dtype, mode="r+", shape=shape)


def _map_chunks(x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], dtype, scratch: bool = False) -> np.ndarray:
    """fn applied to x chunk by chunk, into an array of `dtype` (fn(x) itself for one chunk), a
    `scratch_array` with `scratch`."""
    if len(x) <= CHUNK:
        return fn(x).astype(dtype, copy=False)
    first = fn(x[:1])
    shape = (len(x), *first.shape[1:])
    out = scratch_array(shape, dtype) if scratch else np.empty(shape, dtype)
    for a in range(0, len(x), CHUNK):
        out[a:a + CHUNK] = to_float16(fn(x[a:a + CHUNK])) if out.dtype == COMPACT else fn(x[a:a + CHUNK])
    return out


@dataclasses.dataclass
class Normaliser:
    """Standardisation learned on the library, saved with the model."""

    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,)

    @classmethod
    def fit(cls, x: np.ndarray) -> Normaliser:
        mean, std = column_stats(x)
        return cls(mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def to_float32(x: np.ndarray) -> np.ndarray:
    """float32 rows of a (float16) array. PyTorch's cast uses the CPU's half-precision conversion
    instructions: 1,600 x 512 values in 0.07 ms, where NumPy's cast takes 1.75 ms and FAISS' fp16
    decoder 1.57 ms (the bulk of a large space's re-ranking; `vidsim.bench --scale`). Bitwise the
    same values: float32 holds every float16 exactly."""
    if x.dtype != np.float16 or x.ndim != 2:
        return np.asarray(x, np.float32)
    import torch  # noqa: PLC0415 - float16 only in spaces with a FAISS index; 2 s to import, once

    if not x.flags.writeable or not x.flags.c_contiguous:  # a memory-mapped slice: torch wants its own
        x = np.array(x, order="C")
    return torch.from_numpy(x).float().numpy()


def to_float16(x: np.ndarray) -> np.ndarray:
    """float16 rows of a float32 array, cast by PyTorch: bitwise NumPy's values (rounded to
    nearest even, inf beyond float16's range) 4.6x quicker (16,384 x 512 values: 8 vs 37 ms), which
    a million clips' 4 million seconds in each modality pay several times while their index is built."""
    if x.dtype == COMPACT or x.ndim != 2:
        return np.asarray(x, COMPACT)
    import torch  # noqa: PLC0415 - float16 only in spaces with a FAISS index

    x = np.ascontiguousarray(x, np.float32)
    if not x.flags.writeable:  # a memory-mapped slice: torch wants its own
        x = x.copy()
    return torch.from_numpy(x).half().numpy()


def _spans(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices of every row in the spans [starts[i], ends[i]), where each span begins in them)."""
    lengths = ends - starts
    local = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    take = np.repeat(starts - local, lengths) + np.arange(int(lengths.sum()))
    return take, local


def _chamfer(sims: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(P,) similarity of one query to P clips from the (S, Tq) cosines of their seconds (rows; clip
    i's begin at starts[i]) with the query's: the mean over the query's seconds of each one's best
    match in the clip. A clip longer than the query is matched within its best stretch as long as
    the query: a three-minute video offers each query second 180 chances of a close match, so
    matching it whole would rank long videos of other songs above the short clips of the query's own.
    (Seconds as rows: BLAS fills an (S, Tq) product from (S, D) rows twice as fast as a (Tq, S) one.)"""
    s, tq = sims.shape
    lengths = np.diff(np.append(starts, s))
    whole = np.maximum.reduceat(sims, starts, axis=0).mean(axis=1)
    longer = lengths > tq
    if not longer.any():
        return whole
    from scipy.ndimage import maximum_filter1d  # noqa: PLC0415

    # the stretch [j, j + Tq) of the seconds: each query second's best match in it, averaged
    stretch = maximum_filter1d(sims, size=tq, axis=0, mode="constant", cval=-np.inf, origin=-(tq // 2)).mean(axis=1)
    ends = np.repeat(starts + lengths, lengths)
    stretch = np.where(np.arange(s) + tq <= ends, stretch, -np.inf)  # stretches inside one clip
    return np.where(longer, np.maximum.reduceat(stretch, starts), whole)


@dataclasses.dataclass(frozen=True)
class Seconds:
    """Some clips' per-second rows, read once (`SegmentSpace.block`): to score them against a query
    and its expansion, and to align the hits among them with the query."""

    rows: np.ndarray  # (R, D) float32: prepared, or as stored when `inverse` is given
    local: np.ndarray  # (P,) where each clip's rows begin
    inverse: np.ndarray | None  # (R,) 1 / each stored row's length once centred and scaled


class _Nearest:
    """What every space shares: the nearest clips to a query, by scan or by FAISS candidates."""

    rows: np.ndarray
    ann: VectorIndex | None

    def distances(self, q: np.ndarray) -> np.ndarray:  # (M,) to every clip
        return self.distances_at(q, np.arange(len(self.rows)))

    def distances_at(self, q: np.ndarray, pos: np.ndarray) -> np.ndarray:  # (P,) to clips at positions
        raise NotImplementedError

    def distances_many(self, queries: list[np.ndarray], pos: np.ndarray) -> np.ndarray:
        """(len(queries), P): several queries' distances to the same clips."""
        return np.stack([self.distances_at(q, pos) for q in queries])

    def block(self, pos: np.ndarray):
        """The clips at these positions, read once for `block_distances` (here: the positions)."""
        return pos

    def block_distances(self, queries: list[np.ndarray], block) -> np.ndarray:
        """(len(queries), P) distances to a `block`'s clips."""
        return self.distances_many(queries, block)

    def block_similarities(self, q: np.ndarray, block) -> np.ndarray | None:
        """(R, Tq) cosines of the seconds a `block` read with the query's; None for a space of one
        vector per clip."""
        return None

    def block_members(self, block, idx: np.ndarray) -> list[np.ndarray]:
        """`member` of the block's clips at these indices (into the positions the block was read for)."""
        return [self.member(int(block[i])) for i in idx]

    def members(self, pos: np.ndarray) -> list[np.ndarray]:
        """`member` of each clip at these positions."""
        return [self.member(int(j)) for j in pos]

    def summary(self, q: np.ndarray) -> np.ndarray:  # (D,) the query's vector in the FAISS index
        raise NotImplementedError

    def candidates(self, q: np.ndarray, c: int) -> np.ndarray | None:
        """Positions of up to max(c, the index's candidate count) clips FAISS proposes for the
        query; None when the space is small enough to be scanned whole."""
        if self.ann is None:
            return None
        ids = self.ann.search(self.summary(q), max(c, self.ann.candidates))[0]
        return np.sort(ids[ids >= 0])

    def nearest(self, q: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions, exact distances) of the c nearest clips, nearest first."""
        pos = self.candidates(q, c)
        if pos is None:
            d = self.distances(q)
            order = np.argsort(d, kind="stable")[:c]
            return order, d[order]
        d = self.distances_at(q, pos)
        order = np.argsort(d, kind="stable")[:c]
        return pos[order], d[order]

    def positions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions, found (len(rows),) bool) of index rows in this space (rows sorted, as built)."""
        m = len(self.rows)
        if not m:
            return np.zeros(len(rows), np.int64), np.zeros(len(rows), bool)
        if self._every_clip:  # a binary search per row costs ~0.1 ms per 200 rows in a million
            return np.minimum(rows, m - 1), rows < m
        pos = np.minimum(np.searchsorted(self.rows, rows), m - 1)
        return pos, self.rows[pos] == rows

    @cached_property
    def _every_clip(self) -> bool:
        """Whether the space holds every clip of the index (rows 0..M-1): positions are rows."""
        return int(self.rows[0]) == 0 and int(self.rows[-1]) == len(self.rows) - 1


@dataclasses.dataclass
class VectorSpace(_Nearest):
    """Standardised clip-level vectors (the raw-feature baseline); no model."""

    modality: str
    rows: np.ndarray  # (M,) int64 row numbers into the index's clips, ascending
    vectors: np.ndarray  # (M, D) standardised; float32, or float16 with a FAISS index
    mean: np.ndarray  # (D,) library mean
    std: np.ndarray  # (D,) library standard deviation (1 where constant)
    ann: VectorIndex | None = None

    metric = "l2"

    @classmethod
    def build(cls, modality: str, rows: np.ndarray, x: np.ndarray, compact: bool = False) -> VectorSpace:
        norm = Normaliser.fit(x)
        return cls(modality, rows, _map_chunks(x, norm, COMPACT if compact else np.float32, scratch=compact),
                   norm.mean, norm.std)

    def query(self, feats: ClipFeatures) -> np.ndarray | None:
        x = feats.vector(self.modality)
        return None if x is None else ((x - self.mean) / self.std).astype(np.float32)

    def member(self, j: int) -> np.ndarray:
        return to_float32(self.vectors[j:j + 1])[0]

    def distances(self, q: np.ndarray) -> np.ndarray:
        if self.vectors.dtype != np.float32:
            return super().distances(q)
        return np.linalg.norm(self.vectors - q[None, :], axis=1)

    def distances_at(self, q: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return np.linalg.norm(to_float32(self.vectors[pos]) - q[None, :], axis=1)

    def distances_many(self, queries: list[np.ndarray], pos: np.ndarray) -> np.ndarray:
        """(len(queries), P), the clips' vectors read once for every query."""
        x = to_float32(self.vectors[pos])
        return np.stack([np.linalg.norm(x - q[None, :], axis=1) for q in queries]) if queries else \
            np.zeros((0, len(pos)), np.float32)

    def summary(self, q: np.ndarray) -> np.ndarray:
        return q

    def summaries(self) -> np.ndarray:
        return self.vectors

    def arrays(self) -> dict[str, np.ndarray]:
        return {"rows": self.rows, "vectors": self.vectors, "mean": self.mean, "std": self.std}


@dataclasses.dataclass
class LatentSpace(_Nearest):
    """The original's: VAE latent means of the clip-level inputs, Euclidean distance."""

    modality: str
    rows: np.ndarray  # (M,)
    latents: np.ndarray  # (M, L) float32
    model: VAE | None = None  # needed to place a new query
    norm: Normaliser | None = None
    loader: Callable[[], tuple[VAE, Normaliser]] | None = None  # loads model and norm on first use
    ann: VectorIndex | None = None

    metric = "l2"

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

    def distances_at(self, q: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return np.linalg.norm(self.latents[pos] - q[None, :], axis=1)

    def summary(self, q: np.ndarray) -> np.ndarray:
        return q

    def summaries(self) -> np.ndarray:
        return self.latents

    def arrays(self) -> dict[str, np.ndarray]:
        return {"rows": self.rows, "latents": self.latents}


@dataclasses.dataclass
class SegmentSpace(_Nearest):
    """Per-second rows of one single modality, compared by best match per query second.

    The stored `seconds` are the features as they came (saved as float16 with a FAISS index),
    shared with any other space over the same rows; they are centred, scaled and L2-normalised
    when used (all at once for a small space, the candidates' only for a large one)."""

    modality: str
    rows: np.ndarray  # (M,)
    offsets: np.ndarray  # (M + 1,) clip j owns seconds[offsets[j]:offsets[j + 1]]
    seconds: np.ndarray  # (S, D) per-second features as extracted (float16 with a FAISS index)
    center: np.ndarray  # (D,) mean library second (zeros: the encoder's own space, for text)
    scale: np.ndarray  # (D,) per-dimension scale (the std, or ones when only centring)
    ann: VectorIndex | None = None
    norms: np.ndarray | None = None  # (S,) with a FAISS index: each stored second's length once centred and scaled
    second_ann: VectorIndex | None = None  # with `ann`: FAISS over every prepared second (ids: seconds)
    second_hits: int = 32  # library seconds each query second asks `second_ann` for
    # while the index is built: each clip's summary (`scan`), for the FusedIndex; never saved
    summary_rows: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    metric = "ip"

    @classmethod
    def build(cls, modality: str, rows: np.ndarray, offsets: np.ndarray, seconds: np.ndarray,
              standardise: bool, centre: bool = True, compact: bool = False) -> SegmentSpace:
        """Centre (and, with `standardise`, scale) with the library's per-second statistics.

        `centre=False` keeps the encoder's own space (where CLIP text embeddings live). `compact`
        (the space will get a FAISS index): the seconds are kept as float16, as the index stores
        them, in a `scratch_array` copied while their statistics are read (the index's build and
        its save then read 2 bytes a value, not 4, and never convert them again)."""
        stored = scratch_array(seconds.shape, COMPACT) if compact else None
        mean, std = column_stats(seconds, stored)
        seconds = seconds if stored is None else stored
        center = mean.astype(np.float32) if centre else np.zeros(seconds.shape[1], np.float32)
        scale = np.where(std > 1e-8, std, 1.0).astype(np.float32) if standardise \
            else np.ones_like(center)
        return cls(modality, rows, offsets, seconds, center, scale)

    def _prepare(self, seconds: np.ndarray) -> np.ndarray:
        return _normalise_rows((seconds - self.center) / self.scale)

    @cached_property
    def vectors(self) -> np.ndarray:
        """(S, D) float32, every second prepared: for scanning a small space whole."""
        return self._prepare(np.asarray(self.seconds, np.float32))

    def query(self, feats: ClipFeatures) -> np.ndarray | None:
        rows = feats.segments(self.modality)
        return None if rows is None else self._prepare(rows)

    def member(self, j: int) -> np.ndarray:
        if self.ann is None:
            return self.vectors[self.offsets[j]:self.offsets[j + 1]]
        return self._prepare(to_float32(self.seconds[self.offsets[j]:self.offsets[j + 1]]))

    def members(self, pos: np.ndarray) -> list[np.ndarray]:
        """`member` of each clip at these positions, read in one go (a query's hits)."""
        if self.ann is None:
            return super().members(pos)
        take, local = _spans(self.offsets[pos], self.offsets[pos + 1])
        rows = self._prepare(to_float32(self.seconds[take]))
        return np.split(rows, local[1:])

    def similarities(self, q: np.ndarray) -> np.ndarray:
        """(M,) mean over the query's rows of the best cosine with each clip's rows, in [-1, 1]
        (a large space is scanned in chunks, never prepared whole)."""
        if self.ann is not None:
            return 1.0 - self.distances_at(q, np.arange(len(self.rows)))
        return _chamfer(self.vectors @ q.T, self.offsets[:-1])

    def distances(self, q: np.ndarray) -> np.ndarray:
        return 1.0 - self.similarities(q)

    def distances_at(self, q: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return self.distances_many([q], pos)[0]

    def distances_many(self, queries: list[np.ndarray], pos: np.ndarray) -> np.ndarray:
        """(len(queries), P), reading and preparing each clip's seconds once for all queries."""
        step = CHUNK // 16  # a few thousand clips' seconds at a time
        return np.concatenate([self.block_distances(queries, self.block(pos[a:a + step]))
                               for a in range(0, len(pos), step)], axis=1) if len(pos) else \
            np.zeros((len(queries), 0), np.float32)

    def block(self, pos: np.ndarray) -> Seconds:
        """The seconds of the clips at these positions, read once. With `norms` the rows stay as
        stored and `block_distances` centres, scales and normalises through the query instead
        (preparing 400 candidates' 1,600 seconds took ~0.9 ms at a million clips); else they are
        prepared here."""
        take, local = _spans(self.offsets[pos], self.offsets[pos + 1])
        rows = to_float32(self.seconds[take])
        if self.norms is None:
            return Seconds(self._prepare(rows), local, None)
        return Seconds(rows, local, 1.0 / np.maximum(self.norms[take], 1e-12))

    def block_distances(self, queries: list[np.ndarray], block: Seconds) -> np.ndarray:
        lengths = np.array([len(x) for x in queries])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        sims = self.block_similarities(np.concatenate(queries), block)  # (R, sum Tq): one product for all
        return np.stack([self.block_scores(sims[:, a:a + n], block) for a, n in zip(starts, lengths)])

    def block_similarities(self, q: np.ndarray, block: Seconds) -> np.ndarray:
        if block.inverse is None:
            return block.rows @ q.T
        # ((s - c) / scale) . q / |(s - c) / scale|, without preparing s
        qs = q / self.scale
        sims = block.rows @ qs.T
        sims -= qs @ self.center
        sims *= block.inverse[:, None]
        return sims

    def block_scores(self, sims: np.ndarray, block: Seconds) -> np.ndarray:
        """(P,) distances to the block's clips from one query's `block_similarities`."""
        return 1.0 - _chamfer(sims, block.local)

    def block_spans(self, sims: np.ndarray, block: Seconds, idx: np.ndarray) -> list[np.ndarray]:
        """(Tq, Tc) slices of one query's `block_similarities` for the block's clips at these
        indices: each clip's seconds against the query's, as `excerpts.similarities` gives them."""
        ends = np.append(block.local[1:], len(block.rows))
        return [sims[block.local[i]:ends[i]].T for i in idx]

    def block_members(self, block: Seconds, idx: np.ndarray) -> list[np.ndarray]:
        """The prepared seconds of the block's clips at these indices, from the rows it read."""
        ends = np.append(block.local[1:], len(block.rows))
        take, local = _spans(block.local[idx], ends[idx])
        rows = block.rows[take]
        if block.inverse is not None:
            rows = (rows - self.center) / self.scale * block.inverse[take, None]
        return np.split(rows.astype(np.float32, copy=False), local[1:]) if len(idx) else []

    def summary(self, q: np.ndarray) -> np.ndarray:
        return _normalise_rows(q.mean(axis=0))

    def candidates(self, q: np.ndarray, c: int) -> np.ndarray | None:
        """The summary index's candidates and, when the space holds clips longer than the query,
        the clips the query's seconds vote for (`voted`)."""
        pos = super().candidates(q, c)
        if pos is None or self.second_ann is None or len(q) >= self.longest:
            return pos
        return np.union1d(pos, self.voted(q))

    def voted(self, q: np.ndarray) -> np.ndarray:
        """Positions of the clips whose seconds are among the nearest of most query seconds, most
        votes first (one vote per query second and clip; `second_ann.candidates` of them).

        A clip's summary is its mean second: an excerpt of a long video, one scene of many, can be
        far from it, while the excerpt's seconds still find the video's own seconds."""
        if self.second_ann is None or not len(q):
            return np.zeros(0, np.int64)
        voters = q if len(q) <= MAX_VOTERS else q[np.linspace(0, len(q) - 1, MAX_VOTERS).round().astype(int)]
        ids = self.second_ann.search(voters, self.second_hits)  # (T, hits) second positions, -1: none
        t, found = np.nonzero(ids >= 0)
        clips = np.searchsorted(self.offsets, ids[t, found], side="right") - 1
        pairs = np.unique(t * len(self.rows) + clips)  # one vote per (query second, clip)
        clips, votes = np.unique(pairs % len(self.rows), return_counts=True)
        return clips[np.argsort(-votes, kind="stable")[:self.second_ann.candidates]]

    @cached_property
    def longest(self) -> int:
        """Seconds of the longest clip."""
        return int(np.diff(self.offsets).max()) if len(self.rows) else 0

    def summaries(self, out: np.ndarray | None = None) -> np.ndarray:
        """(M, D) float16: each clip's mean prepared second, L2-normalised (the FAISS vectors, which
        only propose candidates: half the memory of float32 while the index is built); written into
        `out` when given (e.g. a memory-mapped file's columns). Those `scan` made, when it has run."""
        if self.summary_rows is not None:
            if out is None:
                return self.summary_rows
            for a in range(0, len(out), CHUNK):
                out[a:a + CHUNK] = self.summary_rows[a:a + CHUNK]
            return out
        if out is None:
            out = np.empty((len(self.rows), self.seconds.shape[1]), COMPACT)
        for a, b, lo, prepared in self._prepared_chunks():
            out[a:b] = _normalise_rows(np.add.reduceat(prepared, self.offsets[a:b] - lo, axis=0))
        return out

    def scan(self, prepared: np.ndarray | None = None) -> np.ndarray:
        """One pass over every second for a large space's indexes, from the seconds rounded to
        float16 as the index stores them: the clips' `summaries` (kept, in a `scratch_array`, for
        the FusedIndex too), each second's length once centred and scaled (returned: `norms`), and
        with `prepared` (S, D) every prepared second written into it (the per-second index's
        vectors). At a million 4-s clips, once instead of four times over 4 million seconds."""
        import torch  # noqa: PLC0415 - large spaces only: its kernels use every core (NumPy's: one)

        self.summary_rows = None
        summaries = scratch_array((len(self.rows), self.seconds.shape[1]), COMPACT)
        norms = np.empty(len(self.seconds), np.float32)
        center, scale = torch.from_numpy(self.center), torch.from_numpy(self.scale)
        for a, b, lo, hi in self._clip_chunks():
            x = torch.from_numpy(to_float32(to_float16(self.seconds[lo:hi])))
            x.sub_(center).div_(scale)
            n = torch.linalg.vector_norm(x, dim=1)
            norms[lo:hi] = n.numpy()
            x.div_(n.clamp_min(1e-12).unsqueeze(1))
            if prepared is not None:
                prepared[lo:hi] = x.half().numpy()
            sums = torch.segment_reduce(x, "sum", lengths=torch.from_numpy(np.diff(self.offsets[a:b + 1])), axis=0)
            summaries[a:b] = to_float16(_normalise_rows(sums.numpy()))
        self.summary_rows = summaries
        return norms

    def _clip_chunks(self) -> Iterator[tuple[int, int, int, int]]:
        """(first clip, end clip, first second, end second) of the clips in chunks of CHUNK / 16."""
        step = max(1, CHUNK // 16)
        for a in range(0, len(self.rows), step):
            b = min(a + step, len(self.rows))
            yield a, b, int(self.offsets[a]), int(self.offsets[b])

    def _prepared_chunks(self) -> Iterator[tuple[int, int, int, np.ndarray]]:
        """(first clip, end clip, first second, their seconds prepared) for clips in chunks."""
        for a, b, lo, hi in self._clip_chunks():
            yield a, b, lo, self._prepare(to_float32(self.seconds[lo:hi]))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"rows": self.rows, "offsets": self.offsets, "seconds": self.seconds,
                "center": self.center, "scale": self.scale, **({} if self.norms is None else {"norms": self.norms})}


Space = VectorSpace | LatentSpace | SegmentSpace
KINDS = {"vector": VectorSpace, "latent": LatentSpace, "segment": SegmentSpace}


def kind_of(space: Space) -> str:
    return next(k for k, cls in KINDS.items() if isinstance(space, cls))


def from_arrays(kind: str, modality: str, arrays: dict[str, np.ndarray]) -> Space:
    """Rebuild a saved space (LatentSpace gets its model attached by the caller)."""
    return KINDS[kind](modality=modality, **arrays)


def add_index(space: Space, cfg: IndexConfig, seed: int = 0, label: str = "", seconds: bool = True) -> Space:
    """The space with a FAISS index when it is larger than cfg.exact_max; unchanged otherwise.
    (`Index.save` then stores its vectors as float16.) A per-second space also gets an index over
    every second, with `seconds` and `cfg.segment_candidates` > 0."""
    from vidsim import ann  # noqa: PLC0415 - faiss only for large libraries

    if not ann.needs_index(len(space.rows), cfg):
        return space
    label = label or space.modality
    if not isinstance(space, SegmentSpace):
        space.ann = ann.VectorIndex.build(space.summaries(), space.metric, cfg, seed, label)
        return space
    # the per-second index's vectors: a float16 `scratch_array` (a million 4-s clips: 4 GB the kernel can page out)
    prepared = scratch_array(space.seconds.shape, COMPACT) if seconds and cfg.segment_candidates > 0 else None
    space.norms = space.scan(prepared)
    space.ann = ann.VectorIndex.build(space.summaries(), space.metric, cfg, seed, label)
    if prepared is not None:
        space.second_ann = second_index(prepared, cfg, seed, f"{label} seconds")
        space.second_hits = cfg.segment_hits
    return space


def second_index(vectors: np.ndarray, cfg: IndexConfig, seed: int = 0, label: str = "seconds") -> VectorIndex:
    """FAISS over every prepared second of a space (`SegmentSpace.scan`; `ann.vote_factory`),
    proposing `cfg.segment_candidates` clips."""
    from vidsim import ann  # noqa: PLC0415 - faiss only for large libraries

    index = ann.VectorIndex.build(vectors, "ip", cfg, seed, label,
                                  ann.vote_factory(cfg.factory, len(vectors), vectors.shape[1]))
    index.candidates = cfg.segment_candidates
    index.set_nprobe(cfg.segment_nprobe)
    return index
