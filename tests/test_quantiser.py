"""The coarse quantiser's k-means and assignments (PyTorch's bfloat16 products, or FAISS' float32
ones in a subspace) and the FAISS indexes built on them."""

from __future__ import annotations

import numpy as np
import pytest

from vidsim import ann, cpu, quantiser
from vidsim.config import IndexConfig

faiss = ann.load_faiss()


def _exact(x: np.ndarray, c: np.ndarray, metric: str) -> np.ndarray:
    x, c = x.astype(np.float64), c.astype(np.float64)
    if metric == "ip":
        return (x @ c.T).argmax(1)
    return ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)


@pytest.fixture(params=["bfloat16", "float32"])
def products(request, monkeypatch) -> str:
    """Either kind of product, whatever this CPU has (PyTorch emulates bfloat16 products where the
    CPU lacks them), with this module training and filling every inverted file."""
    monkeypatch.setattr(quantiser, "bfloat16", lambda: request.param == "bfloat16")
    monkeypatch.setattr(quantiser, "enabled", lambda dim, dims=0: True)
    return request.param


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_each_vector_goes_to_its_nearest_centroid_but_for_near_ties(products, metric):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 40)).astype(np.float32)
    c = rng.standard_normal((96, 40)).astype(np.float32) * rng.uniform(0.5, 2.0, (96, 1)).astype(np.float32)
    got = quantiser.nearest(x, c, metric)
    assert got.shape == (3000,) and got.dtype == np.int64
    want = _exact(x, c, metric)
    assert (got == want).mean() >= (0.99 if products == "bfloat16" else 0.999)
    # where it differs, the centroid it chose is within bfloat16's precision of the nearest
    scores = x.astype(np.float64) @ c.T.astype(np.float64)
    if metric == "l2":
        scores -= 0.5 * (c.astype(np.float64) ** 2).sum(1)
    rows = np.arange(len(x))
    gap = scores[rows, want] - scores[rows, got]
    scale = np.abs(x).sum(1) * np.abs(c).max() + (0.5 * (c ** 2).sum(1).max() if metric == "l2" else 0)
    assert (gap <= scale * 2.0 ** -7).all()


def test_bfloat16_is_used_only_where_the_cpu_multiplies_it_and_the_vectors_are_wide():
    assert cpu.native_bf16(frozenset({"avx2", "avx512_bf16"})) and cpu.native_bf16(frozenset({"amx_bf16"}))
    assert not cpu.native_bf16(frozenset({"avx2", "fma", "avx512f"}))
    assert quantiser.bfloat16() == cpu.native_bf16()
    # in full width, only bfloat16 products gain on FAISS' own; a subspace that halves the width gains on any CPU
    assert quantiser.enabled(512) == cpu.native_bf16() and quantiser.enabled(144, 128) == cpu.native_bf16()
    assert quantiser.enabled(512, 128) and quantiser.enabled(256, 128)
    assert not quantiser.enabled(16) and not quantiser.enabled(32, 8)  # too narrow to gain


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_kmeans_fits_as_well_as_faiss_own(products, metric):
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((40, 32)).astype(np.float32) * 2
    x = centres[rng.integers(0, 40, 4000)] + rng.standard_normal((4000, 32)).astype(np.float32)
    if metric == "ip":
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    got = quantiser.kmeans(x, 32, 10, metric, seed=3)
    assert got.shape == (32, 32) and got.dtype == np.float32
    theirs = faiss.Kmeans(32, 32, niter=10, seed=3, spherical=metric == "ip")
    theirs.train(x)

    def error(c: np.ndarray) -> float:  # what k-means minimises (inner products: maximises)
        if metric == "ip":
            return -float((x @ c.T).max(axis=1).sum())
        return float(((x[:, None] - c[None]) ** 2).sum(-1).min(axis=1).sum())

    assert error(got) <= error(theirs.centroids) + 0.03 * abs(error(theirs.centroids))
    if metric == "ip":  # spherical, as FAISS trains an inner-product quantiser
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="at least 33 vectors"):
        quantiser.kmeans(x[:5], 33, 2, metric)


def test_an_empty_cluster_takes_half_of_a_large_one():
    x = np.concatenate([np.zeros((50, 4)), np.ones((50, 4))]).astype(np.float32)  # two points, three centroids
    got = quantiser.kmeans(x, 3, 5, "l2", seed=0)
    assert np.isfinite(got).all() and len(np.unique(got.round(6), axis=0)) == 3


def _lists(index) -> np.ndarray:
    """The list each vector of an inverted file was added to."""
    from faiss.contrib.inspect_tools import get_invlist

    ivf = faiss.extract_index_ivf(index)
    out = np.full(ivf.ntotal, -1)
    for list_no in range(ivf.nlist):
        ids, _ = get_invlist(ivf.invlists, list_no)
        out[ids] = list_no
    return out


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_a_quantiser_in_a_subspace_fills_lists_as_their_full_centroids_rank_them(products, metric):
    """k-means in the sample's principal directions; the full-width centroids FAISS holds lie in
    that subspace, so the nearest of them over every dimension is the list a vector was given."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3000, 8)).astype(np.float32) @ rng.standard_normal((8, 48)).astype(np.float32)
    x += 0.3 * rng.standard_normal((3000, 48)).astype(np.float32) + 2.0  # structure in 8 of 48, and an offset
    if metric == "ip":
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    coarse = quantiser.Coarse.train(x, 32, 10, metric, dims=8, seed=1)
    assert coarse.basis.shape == (8, 48) and coarse.centroids.shape == (32, 8)
    np.testing.assert_allclose(coarse.basis @ coarse.basis.T, np.eye(8), atol=1e-5)
    full = coarse.full_centroids()
    assert full.shape == (32, 48)
    outside = full - (coarse.mean if metric == "l2" else 0)  # "ip" projects uncentred (coarse.mean is None)
    np.testing.assert_allclose(outside @ coarse.basis.T @ coarse.basis, outside, atol=1e-4)
    assert (coarse.mean is None) == (metric == "ip")
    got = coarse.assign(x)
    assert (got == _exact(x, full, metric)).mean() >= 0.97  # bfloat16: but for near ties
    assert len(np.unique(got)) == 32
    for dims in (0, 30):  # 0: every dimension; 30 of 48 would not halve the products
        whole = quantiser.Coarse.train(x, 32, 10, metric, dims=dims, seed=1)
        assert whole.basis is None and whole.full_centroids().shape == (32, 48)


@pytest.mark.parametrize(("factory", "metric", "dims"), [("IVF64,SQ8", "l2", 128), ("IVF64,PQ8", "ip", 128),
                                                         ("PCA16,IVF32,SQ8", "ip", 128), ("IVF64,SQ8", "l2", 8),
                                                         ("IVF64,PQ8", "ip", 8)])
def test_indexes_fill_their_lists_as_faiss_assigns_them_and_find_their_vectors(products, factory, metric, dims):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4000, 32)).astype(np.float32)
    if metric == "ip":
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    cfg = IndexConfig(nprobe=64, candidates=10, coarse_dims=dims)
    index = ann.VectorIndex.build(x, metric, cfg, factory=factory)
    assert index.size == 4000 and index.index.is_trained
    ivf = faiss.extract_index_ivf(index.index)
    chained = x
    if isinstance(index.index, faiss.IndexPreTransform):  # the PCA was trained, and applied before the lists
        chained = faiss.downcast_VectorTransform(index.index.chain.at(0)).apply(x)
    _, want = ivf.quantizer.search(chained, 1)
    lists = _lists(index.index)
    assert (lists >= 0).all() and (lists == want[:, 0]).mean() >= 0.97  # bfloat16: but for near ties
    sizes = np.bincount(want[:, 0], minlength=ivf.nlist)
    assert (sizes > 0).all()  # k-means left no list empty
    found = index.search(x[:200], 10)
    assert (found == np.arange(200)[:, None]).any(axis=1).mean() >= 0.95


def test_without_bfloat16_or_a_subspace_faiss_trains_and_fills_the_lists_itself(monkeypatch):
    monkeypatch.setattr(quantiser, "bfloat16", lambda: False)
    monkeypatch.setattr(quantiser, "nearest", None)  # never called
    x = np.random.default_rng(5).standard_normal((2000, 64)).astype(np.float32)
    cfg = IndexConfig(nprobe=8, candidates=5, coarse_dims=48)  # 48 of 64 would not halve the products
    index = ann.VectorIndex.build(x, "l2", cfg, factory="IVF32,SQ8")
    _, want = faiss.extract_index_ivf(index.index).quantizer.search(x, 1)
    np.testing.assert_array_equal(_lists(index.index), want[:, 0])


def test_without_bfloat16_a_subspace_that_halves_the_width_fills_the_lists_from_float32_products(monkeypatch):
    monkeypatch.setattr(quantiser, "bfloat16", lambda: False)
    monkeypatch.setattr(quantiser, "_nearest_bf16", None)  # never called
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3000, 12)).astype(np.float32) @ rng.standard_normal((12, 64)).astype(np.float32)
    x += 0.2 * rng.standard_normal((3000, 64)).astype(np.float32)
    index = ann.VectorIndex.build(x, "l2", IndexConfig(nprobe=8, candidates=5, coarse_dims=16), factory="IVF32,SQ8")
    ivf = faiss.extract_index_ivf(index.index)
    centroids = ivf.quantizer.reconstruct_n(0, ivf.nlist)
    spread = centroids - centroids.mean(0)
    assert np.linalg.matrix_rank(spread, tol=1e-3 * np.abs(spread).max()) <= 16  # found in the subspace
    _, want = ivf.quantizer.search(x, 1)
    assert (_lists(index.index) == want[:, 0]).mean() >= 0.99  # float32: as FAISS ranks them, but for rounding
    assert (index.search(x[:100], 5) == np.arange(100)[:, None]).any(axis=1).mean() >= 0.95


def test_other_index_kinds_train_and_add_through_faiss(products):
    x = np.random.default_rng(4).standard_normal((500, 16)).astype(np.float32)
    index = ann.VectorIndex.build(x, "l2", IndexConfig(nprobe=16, candidates=5), factory="IVF16_HNSW8,Flat")
    assert index.size == 500 and (index.search(x[:20], 1)[:, 0] == np.arange(20)).all()


@pytest.mark.parametrize("assign", ["quantiser", "faiss"])
def test_four_bit_codes_are_filled_as_assigned_then_searched_by_fast_scan(monkeypatch, tmp_path, assign):
    """The per-second index's kind: a plain IVFPQ of 4-bit codes, its lists filled by this module
    (or FAISS), converted to FAISS' fast-scan index over the same codes, which finds what the plain
    one finds and survives a round trip; a fast-scan factory given as such is filled by FAISS."""
    monkeypatch.setattr(quantiser, "enabled", lambda dim, dims=0: assign == "quantiser")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((6000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cfg = IndexConfig(nprobe=8, candidates=5)
    index = ann.VectorIndex.build(x, "ip", cfg, factory="IVF64,PQ32x4")
    assert type(index.index) is faiss.IndexIVFPQFastScan and index.size == 6000
    _, want = faiss.extract_index_ivf(index.index).quantizer.search(x, 1)
    assert (_lists(index.index) == want[:, 0]).mean() >= 0.97
    found = index.search(x[:300], 5)
    assert (found[:, 0] == np.arange(300)).mean() >= 0.9
    index.save(tmp_path / "fs.faiss")
    back = ann.VectorIndex.load(tmp_path / "fs.faiss", "ip", 8, 5)
    np.testing.assert_array_equal(back.search(x[:300], 5), found)
    given = ann.VectorIndex.build(x, "ip", cfg, factory="IVF64,PQ32x4fs")
    assert type(given.index) is faiss.IndexIVFPQFastScan
    assert (given.search(x[:300], 5)[:, 0] == np.arange(300)).mean() >= 0.9
