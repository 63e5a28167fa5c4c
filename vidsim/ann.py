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
import types

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
    """(n, dim) contiguous float32: x with zero columns appended (float16 converted by
    `spaces.to_float32`: NumPy's cast of a million clips' float16 vectors took 24 s of encode)."""
    x = to_float32(x)
    if x.shape[1] == dim:
        return np.ascontiguousarray(x)
    out = np.zeros((len(x), dim), np.float32)
    out[:, :x.shape[1]] = x
    return out


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
    """`auto` for an index over every second, whose hits only vote for clips: sqrt(n) lists
    (4 million seconds are 4 times a million clips: a quarter of the lists per vector keeps
    filling it as quick) and product-quantised codes of a byte per 8 dimensions, 1/16 of float32
    (a million 4-s clips' frames: 256 MB)."""
    return resolve_factory(factory, n, f"PQ{-(-dim // ALIGN) * ALIGN // 8}", lists=1.0)


def _inverted_file(index):
    """(the transforms in front, the inverted file) of an index whose coarse quantiser is a flat
    one, for `vidsim.quantiser` to train and assign where it is `enabled`; else (None, None)."""
    if not quantiser.enabled(index.d):
        return None, None
    faiss = load_faiss()
    chain = []
    if isinstance(index, faiss.IndexPreTransform):
        chain = [faiss.downcast_VectorTransform(index.chain.at(i)) for i in range(index.chain.size())]
        index = faiss.downcast_index(index.index)
    if not isinstance(index, faiss.IndexIVF) or not isinstance(faiss.downcast_index(index.quantizer), faiss.IndexFlat):
        return None, None
    return chain, index


def _train(index, sample: np.ndarray, metric: str, seed: int) -> None:
    """Train an index on a sample: the transforms in front of an inverted file (PCA), its coarse
    quantiser's k-means (`quantiser.kmeans`), then FAISS' own training of what remains (finding
    the quantiser full, it trains the codes only). Any other kind: FAISS' own training."""
    chain, ivf = _inverted_file(index)
    if ivf is None:
        index.train(sample)
        return
    x = sample
    for transform in chain:
        transform.train(x)
        x = transform.apply(x)
    ivf.quantizer.add(quantiser.kmeans(x, ivf.nlist, KMEANS_ITERATIONS, metric, seed))
    index.train(sample)


def _adder(index, metric: str):
    """add(x) for the index: an inverted file's vectors assigned to their lists by
    `quantiser.nearest` and added as assigned; any other kind through FAISS' own add."""
    chain, ivf = _inverted_file(index)
    if ivf is None:
        return index.add
    from faiss.contrib.ivf_tools import add_preassigned  # noqa: PLC0415

    centroids = ivf.quantizer.reconstruct_n(0, ivf.nlist)

    def add(x: np.ndarray) -> None:
        for transform in chain:
            x = transform.apply(x)
        add_preassigned(ivf, np.ascontiguousarray(x, np.float32), quantiser.nearest(x, centroids, metric))
        index.ntotal = ivf.ntotal  # a PCA in front counts its own

    return add


class VectorIndex:
    """A FAISS index over one float32 vector per clip; ids are positions in the space's rows."""

    def __init__(self, index, metric: str, nprobe: int, candidates: int):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
        self.index = index
        self.metric = metric
        self.candidates = int(candidates)  # clips proposed per query, re-ranked exactly by the space
        self.set_nprobe(nprobe)

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
        try:
            load_faiss().extract_index_ivf(self.index).nprobe = self.nprobe
        except RuntimeError:  # not an inverted file
            if hasattr(self.index, "hnsw"):
                self.index.hnsw.efSearch = max(self.nprobe, 16)

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
        if not index.is_trained:
            rng = np.random.default_rng(seed)
            pick = np.sort(rng.choice(n, min(n, cfg.train_sample), replace=False))
            _train(index, _pad(vectors[pick], padded), metric, seed)
        add = _adder(index, metric)
        for a in progress(range(0, n, ADD_CHUNK), desc=f"{label}: {factory}", unit="chunk"):
            add(_pad(vectors[a:a + ADD_CHUNK], padded))
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
    def load(cls, path: str | os.PathLike, metric: str, nprobe: int, candidates: int) -> VectorIndex:
        """Read an index, memory-mapped where FAISS can (IO_FLAG_MMAP_IFC: loading is quick and
        searching as fast as from memory; plain IO_FLAG_MMAP measured 4x slower per search)."""
        faiss = load_faiss()
        try:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
        except RuntimeError:  # not every index kind can be memory-mapped
            index = faiss.read_index(str(path))
        return cls(index, metric, nprobe, candidates)
