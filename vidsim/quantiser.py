"""The coarse quantiser of an inverted-file index: k-means over a sample, and each vector's nearest
centroid, in the sample's top principal directions (`Coarse`), from PyTorch's bfloat16 matrix
products on CPUs that multiply bfloat16 natively, from FAISS' float32 ones elsewhere.

Building a million clips' indexes was mostly these two products, in FAISS (`vidsim.ann`) through
the float32 OpenBLAS it bundles (429 of encode's 740 s on a Zen 4 EPYC). oneDNN's bfloat16 products
take half the time of float32 ones where the CPU has them (AVX512-BF16, AMX): assignments 1.3-1.8x
quicker than FAISS' there, encode 526 s (BENCHMARK.md). Finding the lists in 128 principal
directions instead of all 256-656 columns halved the products again, at the same recall@10 after
re-ranking (BENCHMARK.md, 2026-12-06, evening). On a CPU without bfloat16 the subspace alone takes
FAISS' float32 assignments of 512-d vectors to 4,096 lists 2.2-2.7x quicker, encode 501 -> 321-344
s (BENCHMARK.md, 2026-12-06, night). FAISS takes the centroids and the assignments as given
(`faiss.contrib.ivf_tools.add_preassigned`) and encodes the codes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vidsim import cpu

F32_BLOCK = 65536  # vectors per FAISS search (FAISS blocks its products itself)
BLOCK = 2048  # vectors per product: its bfloat16 scores (16 MB at 4,096 lists) stay in the L3; 8,192: 1.2x slower
PAD = 16  # columns appended to carry a Euclidean centroid's -|c|^2 / 2 (oneDNN's kernels like multiples of 16)
MIN_DIM = 64  # narrower vectors' products are too small to gain (2-d latents: adds 3.0 s against FAISS' 1.2)


def bfloat16() -> bool:
    """Whether products are taken in bfloat16: where the CPU multiplies it natively (`cpu.native_bf16`;
    elsewhere PyTorch converts, and FAISS' float32 products are quicker)."""
    return cpu.native_bf16()


def subspace(dim: int, dims: int) -> bool:
    """Whether `dims` principal directions at least halve vectors of `dim` dimensions (128 of raw
    audio's 144 gained little and lost recall, 0.995 -> 0.985 at a million clips)."""
    return 0 < dims <= dim // 2


def enabled(dim: int, dims: int = 0) -> bool:
    """Whether an inverted file over vectors of `dim` dimensions is trained and filled through this
    module (else FAISS trains and fills it): where the vectors are wide enough to gain and either
    the products are in bfloat16 or the lists are found in a `dims`-d subspace (in full and in
    float32 this module would only repeat what FAISS does)."""
    return dim >= MIN_DIM and (bfloat16() or subspace(dim, dims))


def nearest(x: np.ndarray, centroids: np.ndarray, metric: str, basis: np.ndarray | None = None,
            mean: np.ndarray | None = None) -> np.ndarray:
    """(N,) int64: each row's nearest centroid by Euclidean distance ("l2") or inner product ("ip");
    with a `basis` ((dims, D) rows), the nearest to x's coordinates in it (after subtracting `mean`).
    From bfloat16 products where `bfloat16()` (approximate where two centroids are within ~0.5% of
    each other, as FAISS' GPU quantisers are with float16 products: a vector then joins a list
    whose centroid is nearly as close as the nearest's, which the lists a query visits around it
    hold as well), else from FAISS' exact float32 search."""
    if bfloat16():
        return _nearest_bf16(x, centroids, metric, basis, mean)
    return _nearest_f32(x, centroids, metric, basis, mean)


def _nearest_f32(x: np.ndarray, centroids: np.ndarray, metric: str, basis: np.ndarray | None,
                 mean: np.ndarray | None) -> np.ndarray:
    """`nearest` from FAISS' flat index over the centroids, x projected in float32 by PyTorch."""
    from vidsim.ann import load_faiss  # noqa: PLC0415 - vidsim.ann imports this module

    faiss = load_faiss()
    c = np.ascontiguousarray(centroids, np.float32)
    flat = faiss.IndexFlatL2(c.shape[1]) if metric == "l2" else faiss.IndexFlatIP(c.shape[1])
    flat.add(c)
    out = np.empty(len(x), np.int64)
    for a in range(0, len(x), F32_BLOCK):
        out[a:a + F32_BLOCK] = flat.search(project(x[a:a + F32_BLOCK], basis, mean), 1)[1][:, 0]
    return out


def _nearest_bf16(x: np.ndarray, centroids: np.ndarray, metric: str, basis: np.ndarray | None,
                  mean: np.ndarray | None) -> np.ndarray:
    """`nearest` from bfloat16 products (float32 sums of bfloat16 values, rounded to bfloat16), x
    projected by a bfloat16 product too (a float32 projection took longer than the assignment it
    saves)."""
    import torch  # noqa: PLC0415 - only large libraries have a FAISS index

    c = torch.from_numpy(np.ascontiguousarray(centroids, np.float32))
    if metric == "l2":  # argmin |x - c|^2 = argmax x.c - |c|^2 / 2: one product with [x, 1] . [c, -|c|^2 / 2]
        c = torch.cat([c, -0.5 * (c * c).sum(1, keepdim=True), torch.zeros(len(c), PAD - 1)], 1)
    c = c.bfloat16()
    axes = None if basis is None else torch.from_numpy(np.ascontiguousarray(basis, np.float32)).bfloat16().T
    centre = None if mean is None else torch.from_numpy(np.ascontiguousarray(mean, np.float32))
    tail = torch.zeros(BLOCK, PAD, dtype=c.dtype)  # the columns [1, 0, ...] appended to each vector
    tail[:, 0] = 1
    out = np.empty(len(x), np.int64)
    for a in range(0, len(x), BLOCK):
        xb = torch.from_numpy(np.ascontiguousarray(x[a:a + BLOCK], np.float32))
        if centre is not None:
            xb = xb - centre
        xb = xb.bfloat16()
        if axes is not None:
            xb = xb @ axes
        if metric == "l2":
            xb = torch.cat([xb, tail[:len(xb)]], 1)
        out[a:a + BLOCK] = (xb @ c.T).max(1).indices.numpy()  # argmax: 4x slower on bfloat16
    return out


def project(x: np.ndarray, basis: np.ndarray | None, mean: np.ndarray | None = None) -> np.ndarray:
    """(n, dims) float32 coordinates of x in a basis's subspace, after subtracting `mean`
    (x itself, as contiguous float32, without a basis)."""
    if basis is None:
        return np.ascontiguousarray(x, np.float32)
    import torch  # noqa: PLC0415

    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    if mean is not None:
        xt = xt - torch.from_numpy(mean)
    return (xt @ torch.from_numpy(basis).T).numpy()


def kmeans(x: np.ndarray, k: int, iterations: int, metric: str, seed: int = 0) -> np.ndarray:
    """(k, D) float32 centroids of x, as FAISS' `Clustering` trains an inverted file's quantiser:
    k rows of x to start, then `iterations` of assigning (`nearest`) and averaging; an empty
    cluster takes half of a large one (`faiss.contrib.clustering.reassign_centroids`); for "ip"
    the centroids are L2-normalised after each step (FAISS' spherical k-means for inner products)."""
    import torch  # noqa: PLC0415
    from faiss.contrib.clustering import reassign_centroids  # noqa: PLC0415

    x = np.ascontiguousarray(x, np.float32)
    if len(x) < k:
        raise ValueError(f"k-means of {k} centroids needs at least {k} vectors, got {len(x)}")
    rs = np.random.RandomState(seed)
    centroids = x[np.sort(rs.choice(len(x), k, replace=False))].copy()
    xt = torch.from_numpy(x)
    for _ in range(iterations):
        assign = nearest(x, centroids, metric)
        sums = torch.zeros(k, x.shape[1]).index_add_(0, torch.from_numpy(assign), xt).numpy()
        counts = np.bincount(assign, minlength=k)
        centroids = sums / np.maximum(counts, 1)[:, None].astype(np.float32)
        reassign_centroids(counts, centroids, rs)
        if metric == "ip":
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    return centroids


def principal_axes(x: np.ndarray, dims: int, centred: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """((dims, D) float32 orthonormal rows, (D,) mean or None): the `dims` directions of x's largest
    (centred: around its mean; else uncentred) second moment, from an eigendecomposition in float64."""
    import torch  # noqa: PLC0415

    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    mean = xt.mean(0) if centred else None
    if mean is not None:
        xt = xt - mean
    moment = (xt.T @ xt).double()  # float32 products summed over the sample, decomposed in float64
    axes = torch.linalg.eigh(moment).eigenvectors[:, -dims:].flip(1).T  # largest first
    return axes.float().contiguous().numpy(), None if mean is None else mean.numpy()


@dataclasses.dataclass(frozen=True)
class Coarse:
    """A coarse quantiser trained and applied in the `dims` principal directions of its sample.

    Its full-width centroids (`full_centroids`, what FAISS' flat quantiser holds and ranks a
    query's lists by) lie in that subspace (around the sample mean for "l2"), so a vector's
    Euclidean distance to each of them is its distance within the subspace plus one term common to
    all (its part outside): the nearest centroid in the subspace is the nearest in full, and the
    lists a query visits rank as the lists were filled. k-means and every assignment multiply
    `dims` columns instead of D (at a million clips 128 instead of 256-656)."""

    centroids: np.ndarray  # (k, dims), or (k, D) without a basis
    metric: str
    basis: np.ndarray | None = None  # (dims, D) orthonormal rows
    mean: np.ndarray | None = None  # (D,) subtracted before projecting ("l2" only)

    @classmethod
    def train(cls, x: np.ndarray, k: int, iterations: int, metric: str, dims: int = 0,
              seed: int = 0) -> Coarse:
        """k-means (`kmeans`) of a sample x in its `dims` principal directions where that at
        least halves its width (`subspace`; else, or with 0 dims, in full). "ip" projects
        uncentred, so that inner products stay inner products."""
        x = np.ascontiguousarray(x, np.float32)
        basis = mean = None
        if subspace(x.shape[1], dims):
            basis, mean = principal_axes(x, dims, centred=metric == "l2")
        return cls(kmeans(project(x, basis, mean), k, iterations, metric, seed), metric, basis, mean)

    def full_centroids(self) -> np.ndarray:
        """(k, D) float32: the centroids in the vectors' own space."""
        if self.basis is None:
            return self.centroids
        full = self.centroids @ self.basis
        return full if self.mean is None else full + self.mean

    def assign(self, x: np.ndarray) -> np.ndarray:
        """(n,) int64: each row's nearest centroid (`nearest`, in the subspace)."""
        return nearest(x, self.centroids, self.metric, self.basis, self.mean)
