"""The vector-index layer: candidate clips for a query from FAISS, for spaces too large to scan.

Every search space keeps its exact representation (clip vectors, latents or per-second rows) in
memory-mapped arrays; above `index.exact_max` clips it also gets a `VectorIndex` over one vector
per clip, which proposes `index.candidates` clips per query that the space then re-ranks with its
own exact distance. Small spaces have no `VectorIndex` and are scanned whole (what `IndexFlat`
would do; NumPy keeps every clip's distance, which fusion and calibration use).

The index is saved with FAISS' own binary format (no pickle) beside the index's arrays, and checked
against dvc.lock with them before it is read.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import types
from collections.abc import Callable

import numpy as np

from vidsim import cpu, quantiser
from vidsim.config import IndexConfig
from vidsim.io import atomic_path
from vidsim.progress import progress
from vidsim.spaces import to_float32

log = logging.getLogger(__name__)

METRICS = ("l2", "ip")  # Euclidean distance, or inner product of L2-normalised vectors (cosine)
ADD_CHUNK = 65536  # vectors converted and added at once: bounds the memory a build needs
# k-means iterations of an inverted file's quantiser: FAISS' 25 took twice as long at a million clips
# (96 vs 47 s for 512-d summaries) for the same recall@10 after re-ranking (0.985, 20 queries)
KMEANS_ITERATIONS = 10
ALIGN = 16  # FAISS' SIMD scalar-quantiser kernels need a multiple of 16 dimensions (7x slower otherwise)


def load_faiss() -> types.ModuleType:
    """FAISS (imported only for libraries large enough to need it), its bundled OpenBLAS told
    which kernels this CPU runs (`cpu.openblas_core_env`: else a CPU newer than that OpenBLAS gets
    generic ones, and k-means and adds run several times slower)."""
    if "faiss" not in sys.modules:
        with cpu.openblas_core_env():
            import faiss  # noqa: F401, PLC0415
    return sys.modules["faiss"]


def _pad(x: np.ndarray, dim: int) -> np.ndarray:
    """(n, dim) contiguous float32: x with zero columns appended (float16 converted by PyTorch,
    `spaces.to_float32`: NumPy's cast of a million clips' float16 vectors took 24 s of encode;
    where columns are appended, cast straight into the wider array, on every core)."""
    if x.shape[1] == dim or x.dtype != np.float16:
        x = to_float32(x)
        if x.shape[1] == dim:
            return np.ascontiguousarray(x)
        out = np.zeros((len(x), dim), np.float32)
        out[:, :x.shape[1]] = x
        return out
    import torch  # noqa: PLC0415 - float16 vectors come from large spaces only

    out = torch.zeros(len(x), dim)
    out[:, :x.shape[1]] = torch.from_numpy(x if x.flags.writeable and x.flags.c_contiguous else np.array(x, order="C"))
    return out.numpy()


def needs_index(n: int, cfg: IndexConfig) -> bool:
    """Whether a space of n clips gets a FAISS index (else it is scanned exactly)."""
    return n > cfg.exact_max


def resolve_factory(factory: str, n: int, codes: str = "SQ8", lists: float = 4.0) -> str:
    """The FAISS index_factory string for n vectors; `auto`: an inverted file of about
    `lists` sqrt(n) lists (a power of two; FAISS' guideline is 4 to 16 sqrt(n): at a million clips
    4,096 lists visit half the vectors of 2,048 for the same recall, measured) with `codes`, by
    default 8-bit scalar-quantised: a quarter of the memory of the vectors, enough to propose
    candidates that are re-ranked exactly anyway."""
    if factory != "auto":
        return factory
    nlist = 2 ** max(4, round(math.log2(lists * math.sqrt(max(n, 1)))))
    return f"IVF{nlist},{codes}"


def vote_factory(factory: str, n: int, dim: int) -> str:
    """`auto` for an index over every second, whose hits only vote for clips: sqrt(n) / 2 lists
    (4 million seconds: 1,024, a sixteenth of the lists per vector of a million clips' 4,096, which
    keeps filling them quick; searched at `index.segment_nprobe` 8, the share of the seconds that
    2,048 lists at 16 visited) and product-quantised codes of 4 bits per 4 dimensions, 1/16 of
    float32 (a million 4-s clips' frames: 256 MB), searched by FAISS' fast-scan kernels
    (`_fast_scan`). At a million clips, against 2,048 lists of a byte per 8 dimensions: every
    excerpt's source still voted for, both indexes built in 73 s instead of 144, and a query's
    votes 8-16x quicker (BENCHMARK.md, 2026-12-06, afternoon)."""
    return resolve_factory(factory, n, f"PQ{-(-dim // ALIGN) * ALIGN // 4}x4", lists=0.5)


def _unwrap(index) -> tuple[list, object]:
    """(the transforms in front of an index, such as a PCA, in order; the index behind them)."""
    faiss = load_faiss()
    if not isinstance(index, faiss.IndexPreTransform):
        return [], index
    chain = [faiss.downcast_VectorTransform(index.chain.at(i)) for i in range(index.chain.size())]
    return chain, faiss.downcast_index(index.index)


def _inverted_file(index, dims: int):
    """(the transforms in front, the inverted file) of an index whose coarse quantiser is a flat
    one, for `vidsim.quantiser` to train and fill where it is `enabled` for the inverted file's
    width and `dims` principal directions; else (None, None)."""
    faiss = load_faiss()
    chain, index = _unwrap(index)
    if not isinstance(index, faiss.IndexIVF) or isinstance(index, faiss.IndexIVFFastScan) or \
            not isinstance(faiss.downcast_index(index.quantizer), faiss.IndexFlat) or \
            not quantiser.enabled(index.d, dims):
        return None, None  # (fast-scan lists hold packed blocks that only FAISS' own add writes)
    return chain, index


def _train(index, sample: np.ndarray, metric: str, seed: int, dims: int) -> quantiser.Coarse | None:
    """Train an index on a sample: the transforms in front of an inverted file (PCA), its coarse
    quantiser (`quantiser.Coarse`: k-means in the sample's `dims` principal directions), then its
    codes on the sample's residuals from the quantiser's own assignments (FAISS' `train` would
    assign the sample in float32 over every dimension: 12 s of encode at a million clips). Any
    other kind, or where `quantiser` is not `enabled`: FAISS' own training, and None."""
    chain, ivf = _inverted_file(index, dims)
    if ivf is None:
        index.train(sample)
        return None
    faiss = load_faiss()
    x = sample
    for transform in chain:
        transform.train(x)
        x = transform.apply(x)
    x = np.ascontiguousarray(x, np.float32)
    coarse = quantiser.Coarse.train(x, ivf.nlist, KMEANS_ITERATIONS, metric, dims, seed)
    centroids = coarse.full_centroids()
    ivf.quantizer.add(centroids)
    assign = coarse.assign(x)
    most = ivf.train_encoder_num_vectors()  # as FAISS' own training: PQ codebooks on a subsample
    if 0 < most < len(x):
        keep = np.sort(np.random.default_rng(seed).choice(len(x), most, replace=False))
        x, assign = x[keep], assign[keep]
    if ivf.by_residual:
        x = x - centroids[assign]
    ivf.train_encoder(len(x), faiss.swig_ptr(np.ascontiguousarray(x)), faiss.swig_ptr(assign))
    ivf.is_trained = index.is_trained = True
    return coarse


def _adder(index, coarse: quantiser.Coarse | None):
    """add(x) for the index: with the coarse quantiser `_train` trained, an inverted file's vectors
    assigned to their lists by it (`quantiser.Coarse.assign`) and added as assigned; else FAISS'
    own add."""
    if coarse is None:
        return index.add
    from faiss.contrib.ivf_tools import add_preassigned  # noqa: PLC0415

    chain, ivf = _unwrap(index)

    def add(x: np.ndarray) -> None:
        for transform in chain:
            x = transform.apply(x)
        add_preassigned(ivf, np.ascontiguousarray(x, np.float32), coarse.assign(x))
        index.ntotal = ivf.ntotal  # a PCA in front counts its own

    return add


def _fast_scan(index):
    """An inverted file of 4-bit product-quantised codes, once filled, as FAISS' fast-scan index
    over the same codes (`IndexIVFPQFastScan`: lookup tables held in SIMD registers, several times
    quicker to search). Built as a plain IVFPQ first, so that `vidsim.quantiser` can fill its
    lists (a fast-scan index packs its codes in blocks only FAISS' own add writes). Any other index
    is returned as it is."""
    faiss = load_faiss()
    if type(index) is not faiss.IndexIVFPQ or index.pq.nbits != 4 or index.pq.M % 2:
        return index
    fast = faiss.IndexIVFPQFastScan(index)  # keeps a reference to `index`, whose quantiser it uses
    index.reset()  # its codes are copied: free them
    return fast


class VectorIndex:
    """A FAISS index over one float32 vector per clip; ids are positions in the space's rows.

    With a `reader` instead of an index, the index is read from disk when first used (under a
    lock: a server's background warm-up and a query may both ask)."""

    def __init__(self, index, metric: str, nprobe: int, candidates: int,
                 reader: Callable[[], object] | None = None):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
        if index is None and reader is None:
            raise ValueError("a VectorIndex needs an index or a reader")
        self._index, self._reader, self._lock = index, reader, threading.Lock()
        self.metric = metric
        self.candidates = int(candidates)  # clips proposed per query, re-ranked exactly by the space
        self.set_nprobe(nprobe)

    @property
    def index(self):
        """The FAISS index, read now if it was loaded lazily."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    index = self._reader()
                    self._apply_nprobe(index)
                    self._index = index
        return self._index

    @property
    def loaded(self) -> bool:
        return self._index is not None

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        """The index's dimensions (the vectors' own, padded to a multiple of ALIGN)."""
        return int(self.index.d)

    def set_nprobe(self, nprobe: int) -> None:
        """How much of the index a query visits: IVF lists (nprobe) or HNSW's efSearch."""
        self.nprobe = int(nprobe)
        if self._index is not None:  # a lazily loaded index gets it when read
            self._apply_nprobe(self._index)

    def _apply_nprobe(self, index) -> None:
        try:
            load_faiss().extract_index_ivf(index).nprobe = self.nprobe
        except RuntimeError:  # not an inverted file
            if hasattr(index, "hnsw"):
                index.hnsw.efSearch = max(self.nprobe, 16)

    @classmethod
    def build(cls, vectors: np.ndarray, metric: str, cfg: IndexConfig, seed: int = 0,
              label: str = "index", factory: str | None = None) -> VectorIndex:
        """Train (on a uniform sample of `cfg.train_sample` vectors) and fill an index.

        Args:
            vectors: (N, D) float vectors, possibly memory-mapped; read in chunks, never copied whole.
            factory: the index_factory string (default: `resolve_factory(cfg.factory, N)`).
        """
        faiss = load_faiss()
        n, d = vectors.shape
        factory = factory or resolve_factory(cfg.factory, n)
        padded = -(-d // ALIGN) * ALIGN  # zeros appended to every vector change no distance
        index = faiss.index_factory(padded, factory,
                                    faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT)
        try:  # the coarse quantiser's k-means
            faiss.extract_index_ivf(index).cp.niter = KMEANS_ITERATIONS
        except RuntimeError:  # not an inverted file
            pass
        try:  # product-quantised codes: no polysemous training (Hamming filtering we do not use; 7 s
            # on 1,800 vectors where the codebooks take 0.1 s)
            faiss.downcast_index(faiss.extract_index_ivf(index)).do_polysemous_training = False
        except (RuntimeError, AttributeError):  # not an inverted file, or not of PQ codes
            pass
        coarse = None
        if not index.is_trained:
            rng = np.random.default_rng(seed)
            pick = np.sort(rng.choice(n, min(n, cfg.train_sample), replace=False))
            coarse = _train(index, _pad(vectors[pick], padded), metric, seed, cfg.coarse_dims)
        add = _adder(index, coarse)
        for a in progress(range(0, n, ADD_CHUNK), desc=f"{label}: {factory}", unit="chunk"):
            add(_pad(vectors[a:a + ADD_CHUNK], padded))
        index = _fast_scan(index)
        log.info("%s: %s over %d vectors of %d dimensions", label, factory, n, d)
        return cls(index, metric, cfg.nprobe, cfg.candidates)

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """(B, <=k) int64 candidate positions per query, best first (the index's own order); a
        short row when the index holds fewer than k vectors reachable with this nprobe."""
        _, ids = self.index.search(_pad(np.atleast_2d(queries), self.dim), min(k, self.size))
        return ids

    def save(self, path: str | os.PathLike) -> None:
        with atomic_path(path) as tmp:
            load_faiss().write_index(self.index, str(tmp))

    @classmethod
    def load(cls, path: str | os.PathLike, metric: str, nprobe: int, candidates: int,
             lazy: bool = False) -> VectorIndex:
        """Read an index, memory-mapped where FAISS can (IO_FLAG_MMAP_IFC: loading is quick and
        searching as fast as from memory; plain IO_FLAG_MMAP measured 4x slower per search);
        with `lazy`, when first used (a fast-scan index is read whole: a million clips' per-second
        indexes, 0.5 GB, took 6.7 s from a cold disk)."""
        def read():
            faiss = load_faiss()
            try:
                return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
            except RuntimeError:  # not every index kind can be memory-mapped
                return faiss.read_index(str(path))

        return cls(None, metric, nprobe, candidates, reader=read) if lazy else \
            cls(read(), metric, nprobe, candidates)
