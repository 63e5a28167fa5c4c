"""The FAISS tier on synthetic libraries: index files, candidates re-ranked exactly, a large library
ranking like a full scan, the index folder round trip and calibration on a sample."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import tempfile

import numpy as np
import pytest

from vidsim import ann, excerpts, fusedindex, methods, spaces, synthetic
from vidsim import index as index_module
from vidsim.config import IndexConfig
from vidsim.index import Index
from vidsim.search import Library
from vidsim.spaces import COMPACT, LatentSpace, SegmentSpace, VectorSpace, add_index, to_float16, to_float32

WORLD = synthetic.World(songs=12, looks=5, visual_dim=32, seconds=3, video_look=0.5, seed=3)
LARGE = IndexConfig(exact_max=100, nprobe=32, candidates=60, fused_nprobe=48,  # 600 clips: FAISS tier
                    fused_dims=40, calibration_sample=200)
EXACT = IndexConfig(calibration_sample=200)
faiss = ann.load_faiss()
KEEP = ["clip", "path", "sha256", "duration", "has_audio", "has_video", "audio_label", "visual_label"]
MANIFEST = {"audio": {}, "extract": {}, "search": {"k": 5, "method": "vidsim"},
            "encoder": {"model": "synthetic", "pretrained": "none", "weights": "none", "dim": WORLD.visual_dim,
                        "image_size": 224, "has_text": False}}


@pytest.fixture(scope="module")
def feats():
    return synthetic.generate(WORLD, 600, seed=1)


@pytest.fixture(scope="module")
def queries():
    return synthetic.generate(WORLD, 40, seed=2, prefix="query")


def _library(feats, cfg: IndexConfig, out) -> Library:
    spaces = methods.build_spaces(feats, {}, index=cfg)
    cals = methods.calibrate(spaces, feats.clips, 5, (2, 0.5), sample=cfg.calibration_sample)
    Index(feats.clips[KEEP], spaces, cals, {**MANIFEST, "index": cfg.__dict__},
          methods.build_fused(spaces, cfg)).save(out)
    return Library.load(out, out)


@pytest.fixture(scope="module")
def libraries(feats, tmp_path_factory) -> tuple[Library, Library]:
    return (_library(feats, EXACT, tmp_path_factory.mktemp("exact")),
            _library(feats, LARGE, tmp_path_factory.mktemp("large")))


def test_auto_factory_grows_with_the_library():
    assert ann.resolve_factory("auto", 1_000_000) == "IVF4096,SQ8"
    assert ann.resolve_factory("auto", 600) == "IVF128,SQ8"
    assert ann.resolve_factory("HNSW32,Flat", 10) == "HNSW32,Flat"
    assert ann.vote_factory("auto", 4_000_000, 512) == "IVF1024,PQ128x4"  # seconds only vote: smaller
    assert ann.vote_factory("auto", 4_000_000, 328) == "IVF1024,PQ84x4"  # 336 dimensions once padded
    assert not ann.needs_index(50_000, EXACT) and ann.needs_index(50_001, EXACT)


@pytest.mark.parametrize("factory", ["auto", "HNSW16,Flat", "Flat"])
def test_vector_index_finds_each_vector_and_survives_a_round_trip(tmp_path, factory):
    x = np.random.default_rng(0).standard_normal((3000, 16)).astype(np.float32)
    index = ann.VectorIndex.build(x, "l2", IndexConfig(factory=factory, nprobe=8, candidates=5))
    ids = index.search(x[:50], 5)
    assert ids.shape == (50, 5) and (ids[:, 0] == np.arange(50)).mean() >= 0.96
    if factory == "auto":  # an inverted file, its quantiser trained with fewer k-means iterations than FAISS'
        assert faiss.extract_index_ivf(index.index).cp.niter == ann.KMEANS_ITERATIONS < 25
    index.save(tmp_path / "x.faiss")
    back = ann.VectorIndex.load(tmp_path / "x.faiss", "l2", 8, 5)
    assert back.size == 3000 and back.dim == 16
    odd = ann.VectorIndex.build(x[:, :13], "l2", IndexConfig(factory=factory, nprobe=8, candidates=5))
    assert odd.dim == 16 and (odd.search(x[:50, :13], 5)[:, 0] == np.arange(50)).mean() >= 0.96  # zero-padded
    np.testing.assert_array_equal(back.search(x[:50], 5), ids)
    with pytest.raises(ValueError, match="unknown metric"):
        ann.VectorIndex(back.index, "cosine", 8, 5)


def test_float16_rows_read_back_as_the_same_float32_values(tmp_path):
    """Large spaces store float16 and re-rank in float32: every one of the 65,536 float16 values
    (subnormals, infinities, NaNs) converts as NumPy converts it, from a read-only memory map too."""
    every = np.arange(65536, dtype=np.uint16).view(np.float16).reshape(256, 256)
    np.save(tmp_path / "x.npy", every)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    for x in (every, mapped[10:20], mapped[np.array([3, 200, 7])]):
        got = to_float32(x)
        assert got.dtype == np.float32 and got.shape == x.shape
        assert np.array_equal(got, np.asarray(x).astype(np.float32), equal_nan=True)


def test_float32_rows_are_stored_as_numpys_float16_values(tmp_path):
    """The builds cast float32 to float16 through PyTorch: bitwise NumPy's rounding, overflow to
    infinity and NaNs included, from a read-only memory map too."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((300, 40)) * np.logspace(-9, 6, 40)).astype(np.float32)
    x[0, :4] = [np.inf, -np.inf, np.nan, 65520.0]
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    with np.errstate(over="ignore"):
        want = x.astype(np.float16)
    for got in (to_float16(x), to_float16(mapped[:]), to_float16(mapped[:, :7])):
        assert got.dtype == np.float16 and np.array_equal(got.view(np.uint16), want[:, :got.shape[1]].view(np.uint16))


def test_column_statistics_read_each_chunk_once(tmp_path, monkeypatch):
    """Chunked statistics (merged per chunk, one read of the array) equal NumPy's over the whole,
    up to float32 deviations; with a float16 copy they are the copy's, and the copy holds the
    values rounded as stored."""
    monkeypatch.setattr(spaces, "CHUNK", 16)
    x = (np.random.default_rng(2).standard_normal((203, 9)) * [1, 10, 1e3, 1e-3, 5, 5, 5, 5, 5] + 40).astype(np.float32)
    mean, std = spaces.column_stats(x)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, x.astype(np.float64).std(axis=0), rtol=1e-6)
    copy = np.zeros(x.shape, COMPACT)
    mean, std = spaces.column_stats(x, copy)
    assert np.array_equal(copy, x.astype(COMPACT))
    np.testing.assert_allclose(std, copy.astype(np.float64).std(axis=0), rtol=1e-6)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    offsets = np.arange(0, 204, 3)[:68]
    offsets[-1] = 203
    space = SegmentSpace.build("audio", np.arange(67), offsets, x, standardise=True, compact=True)
    assert isinstance(space.seconds, np.memmap) and np.array_equal(space.seconds, copy)
    np.testing.assert_allclose(space.center, mean, rtol=1e-6)
    # column 3 is constant once rounded to float16: scale 1
    np.testing.assert_allclose(space.scale, np.where(std > 1e-8, std, 1.0), rtol=1e-6)
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_one_pass_over_the_seconds_gives_each_index_its_vectors(tmp_path, monkeypatch):
    """`SegmentSpace.scan` reads every second once, in chunks of clips, and gives the summary index,
    the per-second index and the re-ranking what each computed from the stored float16 seconds on
    its own: summaries kept for the FusedIndex, prepared seconds, and each second's length."""
    monkeypatch.setattr(spaces, "CHUNK", 64)  # 4 clips per chunk: clips of 1-9 seconds straddle none
    rng = np.random.default_rng(1)
    counts = rng.integers(1, 10, 50)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    seconds = (rng.standard_normal((offsets[-1], 24)) * 2 + 1).astype(np.float32)
    space = SegmentSpace.build("audio", np.arange(50), offsets, seconds, standardise=True)
    plain = space.summaries()  # before any scan: computed from the seconds as given
    prepared = np.zeros(seconds.shape, COMPACT)
    norms = space.scan(prepared)
    stored = to_float32(seconds.astype(COMPACT))
    centred = (stored - space.center) / space.scale
    np.testing.assert_allclose(norms, np.linalg.norm(centred, axis=1), rtol=1e-6)
    np.testing.assert_allclose(prepared.astype(np.float32), centred / norms[:, None], atol=1e-3)
    means = np.stack([(centred / norms[:, None])[a:b].mean(axis=0) for a, b in zip(offsets[:-1], offsets[1:])])
    summaries = space.summaries()
    assert summaries is space.summary_rows and summaries.dtype == COMPACT and summaries.shape == (50, 24)
    np.testing.assert_allclose(summaries.astype(np.float32), means / np.linalg.norm(means, axis=1, keepdims=True),
                               atol=2e-3)
    np.testing.assert_allclose(summaries.astype(np.float32), plain.astype(np.float32), atol=2e-3)
    out = np.zeros((50, 30), COMPACT)
    space.summaries(out=out[:, 3:27])
    assert np.array_equal(out[:, 3:27], summaries) and not out[:, :3].any()


def test_large_raw_spaces_are_built_in_scratch_files_not_in_memory(tmp_path, monkeypatch):
    """A large library's compact raw vectors go to an unlinked memory-mapped file (no memory of their
    size while the index is built), hold the same values as the in-memory path, and leave no file."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(spaces, "CHUNK", 16)
    x = np.random.default_rng(0).standard_normal((100, 12)).astype(np.float32) * 3 + 1
    rows = np.arange(100)
    compact = VectorSpace.build("audio", rows, x, compact=True)
    plain = VectorSpace.build("audio", rows, x)
    gc.collect()
    assert isinstance(compact.vectors, np.memmap) and compact.vectors.dtype == COMPACT
    assert np.array_equal(compact.vectors, plain.vectors.astype(COMPACT))
    assert list(tmp_path.iterdir()) == []


def test_large_spaces_re_rank_faiss_candidates_exactly(feats, queries):
    exact = methods.build_spaces(feats, {}, index=EXACT)
    large = methods.build_spaces(feats, {}, index=LARGE)
    assert set(exact) == set(large) and all(s.ann is None for s in exact.values())
    for key, space in large.items():
        assert space.ann is not None and space.ann.size == len(space.rows), key
        recalls = []
        for i in range(len(queries.clips)):
            q = exact[key].query(queries.clip(i))
            want, want_d = exact[key].nearest(q, 10)
            got, got_d = space.nearest(q, 10)
            recalls.append(len(set(want) & set(got)) / 10)
            # the distances of a found clip are the exact ones (to float16 storage)
            both = np.intersect1d(want, got)
            np.testing.assert_allclose(space.distances_at(q, both), exact[key].distances_at(q, both),
                                       rtol=2e-2, atol=2e-3)
        assert np.mean(recalls) >= 0.98, (key, np.mean(recalls))


def test_a_query_reads_its_candidates_seconds_once_for_its_expansion_and_its_hits(feats, queries):
    """A large space's scoring keeps the candidates' seconds it read and the query's similarities
    with them: the expansion hits take their rows from there (the same prepared rows as reading
    them again) and the hits' matched spans their similarities (the same as computing them again);
    only clips outside the candidates are read from the stored seconds."""
    for modality in ("audio", "visual"):
        space = SegmentSpace.build(modality, np.arange(len(feats.clips)), feats.offsets[modality],
                                   feats.seconds[modality], standardise=modality == "audio")
        space.seconds = np.asarray(space.seconds, COMPACT)  # as a saved large index holds them
        space = add_index(space, LARGE, seconds=False)
        q = space.query(queries.clip(0))
        scored = methods.QueryDistances(space, q, methods.Expansion(n=2, mix=0.5), want=LARGE.candidates)
        nearest = scored.positions[np.argsort(space.distances_at(q, scored.positions), kind="stable")]
        np.testing.assert_allclose(np.concatenate(scored.extra), np.concatenate(space.members(nearest[:2])),
                                   atol=1e-5)  # the expansion: the query's two nearest clips
        outside = np.setdiff1d(np.arange(len(space.rows)), scored.positions)[:3]
        pos = np.concatenate([nearest[[3, 0, 11]], outside])
        read = []
        plain = space.members
        space.members = lambda p, read=read, plain=plain: read.append(p.tolist()) or plain(p)
        got = scored.similarities(pos)
        assert read == [outside.tolist()]  # the candidates' came from the scoring's own product
        for g, rows in zip(got, plain(pos)):
            want = excerpts.similarities(q, rows)
            assert g.dtype == np.float32 and g.shape == want.shape == (len(q), len(rows))
            np.testing.assert_allclose(g, want, atol=1e-5)


@pytest.mark.slow  # a whole Library over FAISS indexes (the fixture builds two: 5 s)
def test_large_segment_spaces_re_rank_stored_seconds_through_their_norms(libraries, queries):
    """With a FAISS index, a segment space keeps each second's length and scores the stored
    (float16) seconds without preparing them: the same distances as preparing them first."""

    _, large = libraries
    for key in ("vidsim.audio", "vidsim.visual"):
        space = large.index.spaces[key]
        assert space.norms is not None and space.norms.shape == (len(space.seconds),), key
        plain = dataclasses.replace(space, norms=None)
        pos = np.arange(0, len(space.rows), 7)
        for i in range(5):
            q = space.query(queries.clip(i))
            np.testing.assert_allclose(space.distances_at(q, pos), plain.distances_at(q, pos), atol=1e-5)


def _videos(rng: np.random.Generator, looks: np.ndarray, count: int, seconds: int, scene: int = 1
            ) -> list[np.ndarray]:
    """Clips whose seconds show one of `looks` per `scene` seconds (a music video's scenes)."""
    out = []
    for _ in range(count):
        centres = looks[rng.integers(0, len(looks), -(-seconds // scene))] + 0.6 * rng.standard_normal(
            (-(-seconds // scene), looks.shape[1]))
        rows = np.repeat(centres, scene, axis=0)[:seconds] + 0.3 * rng.standard_normal((seconds, looks.shape[1]))
        out.append((rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32))
    return out


def test_an_excerpt_of_a_long_video_is_found_through_the_per_second_index():
    """A long video's mean second (its FAISS summary) is far from any one of its scenes, so a
    6 s excerpt's summary proposes the short clips of the scene's look instead; the excerpt's
    seconds, searched in the index of every second, vote for the video, which re-ranks first."""
    rng = np.random.default_rng(11)
    looks = rng.standard_normal((8, 24))
    short, long = _videos(rng, looks, 400, 4, scene=4), _videos(rng, looks, 5, 90, scene=6)
    clips = short + long
    offsets = np.cumsum([0] + [len(c) for c in clips])
    cfg = IndexConfig(exact_max=100, nprobe=16, candidates=20, segment_candidates=30, segment_hits=16)
    build = SegmentSpace.build("visual", np.arange(len(clips)), offsets, np.concatenate(clips), standardise=False)
    space = add_index(build, cfg)
    assert space.second_ann is not None and space.second_ann.size == offsets[-1] and space.longest == 90
    plain = add_index(SegmentSpace.build("visual", np.arange(len(clips)), offsets, np.concatenate(clips),
                                         standardise=False), IndexConfig(**{**cfg.__dict__, "segment_candidates": 0}))
    assert plain.second_ann is None
    found = missed = 0
    for v in range(5):
        source = 400 + v
        start = int(rng.integers(0, 14)) * 6
        excerpt = long[v][start:start + 6] + 0.05 * rng.standard_normal((6, 24)).astype(np.float32)
        q = space._prepare(excerpt)
        assert source in space.voted(q)
        pos, _ = space.nearest(q, 3)
        found += pos[0] == source
        missed += source not in plain.candidates(q, 3)
    assert found == 5 and missed >= 4, (found, missed)
    # a query as long as the longest clip has nothing to find that way: the summaries only
    q = space._prepare(long[0])
    np.testing.assert_array_equal(space.candidates(q, 3), plain.candidates(q, 3))


def _with_videos(feats, scenes, per_video: int):
    """The library plus videos made of `per_video` scenes each (clips of `scenes`, in turn), their
    clip-level inputs the scenes' mean, labelled with their first scene's."""
    import pandas as pd

    from vidsim.dataset import Features

    n = len(scenes.clips) // per_video
    seconds, offsets = {}, {}
    for m in ("audio", "visual"):
        t = np.diff(scenes.offsets[m])[:n * per_video].reshape(n, per_video).sum(axis=1)
        seconds[m] = np.concatenate([feats.seconds[m], scenes.seconds[m][:scenes.offsets[m][n * per_video]]])
        offsets[m] = np.concatenate([feats.offsets[m], feats.offsets[m][-1] + np.cumsum(t)])
    mean = {m: getattr(scenes, m)[:n * per_video].reshape(n, per_video, -1).mean(axis=1) for m in ("audio", "visual")}
    videos = scenes.clips.iloc[::per_video].head(n).assign(
        clip=[f"video-{i}.mp4" for i in range(n)], path=[f"/synthetic/video-{i}.mp4" for i in range(n)],
        sha256=[f"{i:064x}" for i in range(n)], duration=float(per_video * WORLD.seconds))
    return Features(pd.concat([feats.clips, videos], ignore_index=True), np.concatenate([feats.audio, mean["audio"]]),
                    np.concatenate([feats.visual, mean["visual"]]), seconds, offsets)


@pytest.mark.slow  # builds and calibrates a third large library: 7 s
def test_a_large_library_finds_the_video_an_excerpt_comes_from(feats, tmp_path):
    """Videos of 10 scenes in a large library: a scene as the query is found in its video by
    every search, late fusion included (its FusedIndex proposes clips from their mean seconds
    only), and the hit says where; without the per-second index most videos are not proposed."""
    scenes = synthetic.generate(WORLD, 60, seed=9, prefix="scene")
    both = _with_videos(feats, scenes, 10)
    lib = _library(both, LARGE, tmp_path)
    asked = range(0, 60, 7)
    found = {}
    for j in asked:
        video, start = f"video-{j // 10}.mp4", (j % 10) * WORLD.seconds
        for modality in ("audio", "visual", "audio_visual"):
            top = lib.query_features(scenes.clip(j), modality, k=3).hits[0]
            found[modality] = found.get(modality, 0) + (top.clip == video)
            if top.clip == video:
                assert top.match.clip_start == pytest.approx(start, abs=0.5) and top.same_footage
    assert found == {"audio": len(asked), "visual": len(asked), "audio_visual": len(asked)}, found
    for m in ("audio", "visual"):
        lib.index.spaces[f"vidsim.{m}"].second_ann = None
    missed = sum(f"video-{j // 10}.mp4" not in {h.clip for h in lib.query_features(scenes.clip(j), modality, k=3).hits}
                 for j in asked for modality in ("audio", "visual", "audio_visual"))
    assert missed >= len(asked), missed


def test_a_large_latent_space_is_indexed_too():
    rng = np.random.default_rng(5)
    space = add_index(LatentSpace("audio", np.arange(400), rng.standard_normal((400, 2)).astype(np.float32)),
                      IndexConfig(exact_max=100, nprobe=64, candidates=20))
    pos, d = space.nearest(np.zeros(2, np.float32), 5)
    full = np.linalg.norm(space.latents, axis=1)
    np.testing.assert_array_equal(pos, np.argsort(full)[:5])
    np.testing.assert_allclose(d, np.sort(full)[:5], rtol=1e-6)


@pytest.mark.slow  # a whole Library over FAISS indexes (the fixture builds two: 5 s)
def test_a_large_library_ranks_like_a_full_scan(libraries, queries):
    """Every space finds the clips a full scan finds. Late fusion's candidates come from one
    index over both modalities (so its query expansion picks its hits among them): it finds as many
    clips of the query's song and look as the scan, some of them others of the ~30 the scan finds."""
    exact, large = libraries
    assert large.index.spaces["vidsim.audio"].ann is not None
    clips = exact.index.clips
    agree, relevant = {}, {"exact": [], "large": []}
    for method in ("vidsim", "raw"):
        for modality in large.modalities_of(method):
            same = []
            for i in range(len(queries.clips)):
                feats = queries.clip(i)
                a = exact.query_features(feats, modality, k=5, method=method).hits
                b = large.query_features(feats, modality, k=5, method=method).hits
                same.append(len({h.clip for h in a} & {h.clip for h in b}) / 5)
                if a[0].clip == b[0].clip:
                    assert b[0].probability == pytest.approx(a[0].probability, abs=0.02)
                if f"{method}.{modality}" == "vidsim.audio_visual":
                    want = queries.clips.iloc[i][["audio_label", "visual_label"]].tolist()
                    for name, hits in (("exact", a), ("large", b)):
                        rows = clips.set_index("clip").loc[[h.clip for h in hits], ["audio_label", "visual_label"]]
                        relevant[name].append((rows == want).all(axis=1).mean())
            agree[f"{method}.{modality}"] = np.mean(same)
    assert agree.pop("vidsim.audio_visual") >= 0.9
    assert min(agree.values()) >= 0.95, agree
    assert np.mean(relevant["large"]) >= np.mean(relevant["exact"]) - 0.01 > 0.5, relevant


@pytest.mark.slow  # a whole Library over FAISS indexes (the fixture builds two: 5 s)
def test_late_fusion_takes_its_candidates_from_one_index_weighted_per_query(libraries, queries):
    """A large library's audio-visual search asks one FAISS index over both modalities' summaries,
    whose inner product with the query is the weighted sum of the two cosines (each weight times
    its calibration's slope): the ranking `test_a_large_library_ranks_like_a_full_scan` checks."""
    exact, large = libraries
    assert not exact.index.fused
    fused = large.index.fused["vidsim"]
    entry = json.loads((large.index_dir / "manifest.json").read_text())["fused"]["vidsim"]
    assert entry["faiss"] == "vidsim.fused.faiss" and fused.modalities == ("audio", "visual")
    assert fused.dims == (synthetic.AUDIO_DIM, WORLD.visual_dim) and fused.ann.size == len(fused.rows) == 600
    assert fused.ann.candidates == LARGE.fused_candidates and fused.ann.nprobe == LARGE.fused_nprobe
    pca = faiss.downcast_VectorTransform(faiss.downcast_index(fused.ann.index).chain.at(0))  # 40 -> 48 (SIMD)
    assert isinstance(pca, faiss.PCAMatrix) and (pca.d_in, pca.d_out) == (fused.ann.dim, 48) == (368, 48)
    assert fusedindex.fused_factory(LARGE, 10**6, 840) == "PCA48,IVF4096,SQ8"
    assert fusedindex.fused_factory(dataclasses.replace(LARGE, fused_dims=0), 10**6, 840) == "IVF4096,SQ8"
    assert fusedindex.fused_factory(LARGE, 10**6, 40) == "IVF4096,SQ8"  # nothing to reduce
    spaces, cals = large.index.spaces, large.index.calibrations
    feats = queries.clip(0)
    s = {m: spaces[f"vidsim.{m}"].summary(spaces[f"vidsim.{m}"].query(feats)) for m in fused.modalities}
    v = fused.vector(s, {"audio": 0.4, "visual": 0.6}, {m: cals[f"vidsim.{m}"] for m in fused.modalities})
    clip = [spaces[f"vidsim.{m}"].summaries()[5].astype(np.float32) for m in fused.modalities]
    want = sum(w * fusedindex.slope(cals[f"vidsim.{m}"]) * float(s[m] @ c)
               for m, w, c in zip(fused.modalities, (0.4, 0.6), clip))
    assert float(v @ np.concatenate(clip)) == pytest.approx(want, rel=1e-5)
    assert fusedindex.slope(cals["vidsim.audio"]) == -cals["vidsim.audio"].b > 0
    audio_only = fused.vector(s, {"audio": 1.0, "visual": 0.0}, {m: cals[f"vidsim.{m}"] for m in fused.modalities})
    assert not audio_only[synthetic.AUDIO_DIM:].any()


@pytest.mark.slow  # a whole Library over FAISS indexes (the fixture builds two: 5 s)
def test_every_hit_says_where_it_matches_and_evaluation_skips_that(libraries, feats):
    """A library clip as the query matches itself second for second (the same footage); other
    clips of its song and look match less well. Ranking for evaluation (every clip) computes no
    spans."""
    for lib in libraries:
        for modality in ("audio", "visual", "audio_visual"):
            hits = lib.query_features(feats.clip(7), modality, k=4).hits
            first = hits[0]
            assert first.clip == feats.clips["clip"].iloc[7] and first.same_footage
            assert (first.match.query_start, first.match.seconds) == (0.0, 3.0)
            assert first.match.clip_start == pytest.approx(0.0, abs=1e-3)
            assert all(h.match is not None and h.match.score < first.match.score - 0.01 for h in hits[1:]), modality
            assert first.to_dict()["match"] == {"query_start": 0.0, "clip_start": 0.0, "seconds": 3.0,
                                                "score": round(first.match.score, 3), "coverage": 1.0,
                                                "similarity": 1.0}
        assert all(h.match is None for h in lib.rank_all(feats.clip(7), "audio_visual", depth=20).hits)


@pytest.mark.slow  # a whole Library over FAISS indexes (the fixture builds two: 5 s)
def test_more_like_this_and_exclusions_work_on_a_large_library(libraries):
    _, large = libraries
    clip = large.index.clips["clip"].iloc[7]
    first = large.query_clip(clip, "audio_visual", k=3).hits[0]
    assert first.clip == clip and first.probability > 0.5
    without = large.query_clip(clip, "audio_visual", k=3, exclude_self=True)
    assert len(without.hits) == 3 and clip not in [h.clip for h in without.hits]


@pytest.mark.slow  # a whole Library over FAISS indexes (the fixture builds two: 5 s)
def test_index_folder_shares_arrays_memory_maps_them_and_refuses_foreign_paths(feats, libraries, tmp_path,
                                                                              monkeypatch):
    _, large = libraries
    entries = json.loads((large.index_dir / "manifest.json").read_text())["spaces"]
    assert entries["vidsim.visual"]["faiss"] == "vidsim.visual.faiss"
    assert entries["vidsim.visual"]["seconds_faiss"] == "vidsim.visual.seconds.faiss"
    assert large.index.spaces["vidsim.audio"].second_ann.size == len(large.index.spaces["vidsim.audio"].seconds)
    assert large.index.spaces["vidsim.audio"].second_ann.candidates == LARGE.segment_candidates
    # the text space is the visual one uncentred: both read one copy of the frame embeddings
    spaces = methods.build_spaces(feats, {}, text=True, index=LARGE)
    Index(feats.clips[KEEP], spaces, {}, {**MANIFEST, "index": LARGE.__dict__}).save(tmp_path / "text")
    text = json.loads((tmp_path / "text/manifest.json").read_text())["spaces"]
    assert text["vidsim.text"]["arrays"]["seconds"] == text["vidsim.visual"]["arrays"]["seconds"]
    assert text["vidsim.text"]["faiss"] != text["vidsim.visual"]["faiss"]
    assert "seconds_faiss" not in text["vidsim.text"]  # a text query is one vector
    assert not isinstance(large.index.spaces["vidsim.visual"].seconds, np.memmap)  # small: read into memory
    monkeypatch.setattr(index_module, "MMAP_MIN", 0)
    mapped = Library.load(large.index_dir, large.index_dir)
    space = mapped.index.spaces["vidsim.visual"]
    assert isinstance(space.seconds, np.memmap) and isinstance(mapped.index.spaces["raw.visual"].vectors, np.memmap)
    # large spaces are stored as float16; small ones keep float32 (the exact figures)
    assert space.seconds.dtype == COMPACT and large.index.spaces["raw.visual"].vectors.dtype == COMPACT
    assert libraries[0].index.spaces["vidsim.visual"].seconds.dtype == np.float32
    first = feats.clip(3)
    assert [h.clip for h in mapped.query_features(first, "audio_visual").hits] == \
        [h.clip for h in large.query_features(first, "audio_visual").hits]
    # a manifest naming a file outside the index folder is refused, not followed
    import shutil

    copy = tmp_path / "index"
    shutil.copytree(large.index_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["spaces"]["raw.audio"]["arrays"]["vectors"] = "../../secret.npy"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="not a readable index"):
        Library.load(copy, copy)


def _resident_kb(path) -> int:
    """Resident kB of this process' mappings of `path` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps", encoding="utf-8"):
        first = line.split(maxsplit=1)[0]
        if "-" in first and ":" not in first:  # a mapping's header line
            inside = line.rstrip().endswith(str(path))
        elif inside and first == "Rss:":
            total += int(line.split()[1])
    return total


@pytest.mark.slow  # a whole Library over FAISS indexes (the fixture builds two: 5 s)
@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux' /proc/self/smaps")
def test_a_served_large_index_maps_its_arrays_in_the_background(libraries, feats, monkeypatch):
    _, large = libraries
    assert large.warm_up() is None  # its arrays are small enough to be read into memory: nothing to map
    monkeypatch.setattr(index_module, "MMAP_MIN", 0)
    mapped = Library.load(large.index_dir, large.index_dir)
    arrays = mapped.index.mapped()
    seconds = mapped.index.spaces["vidsim.visual"].seconds
    assert any(a is seconds for a in arrays) and len({id(a) for a in arrays}) == len(arrays)
    assert mapped.index.page_in(share=1e-9) == 0  # more than that share of the memory: left alone
    assert _resident_kb(seconds.filename) < seconds.nbytes // 1024
    lazy = [s.second_ann for s in mapped.index.spaces.values() if getattr(s, "second_ann", None) is not None]
    assert lazy and not any(i.loaded for i in lazy)  # per-second indexes: read when first needed, not by load
    thread = mapped.warm_up()
    thread.join(60)
    assert not thread.is_alive()
    assert all(i.loaded for i in lazy) and mapped.index.read_second_indexes() == 0
    assert _resident_kb(seconds.filename) >= seconds.nbytes // 1024  # every page mapped
    assert mapped.index.page_in() == sum(a.nbytes for a in arrays)
    first = feats.clip(3)
    assert [h.clip for h in mapped.query_features(first, "visual").hits] == \
        [h.clip for h in large.query_features(first, "visual").hits]


def test_calibration_of_a_large_space_matches_every_pair_from_a_stratified_sample():
    """Labels shared by two clips each: a uniform sample of 30 of 600 clips holds about one
    relevant pair, too few to fit on; each query's nearest clips plus a weighted uniform sample
    of the others fit the probabilities that every pair fits."""
    world = synthetic.World(songs=300, looks=5, visual_dim=32, seconds=3, seed=4)
    fine = synthetic.generate(world, 600, seed=1)
    key = "vidsim.audio"
    full = methods.calibrate({key: methods.build_spaces(fine, {}, index=EXACT)[key]}, fine.clips, 5, (2, 0.5))[key]
    part = methods.calibrate({key: methods.build_spaces(fine, {}, index=LARGE)[key]}, fine.clips, 5, (2, 0.5),
                             sample=30)[key]
    assert full.kind == part.kind == "logistic"
    d = np.linspace(0, 1.5, 7) * full.scale
    np.testing.assert_allclose(part(d), full(d), atol=0.05)
    assert part.prior == pytest.approx(full.prior, rel=0.2)
    assert full(np.array([0.5 * full.scale]))[0] > 0.5  # a close clip is likely the same song


@pytest.mark.slow
def test_the_app_serves_a_library_too_large_for_one_list(tmp_path, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.helpers import ROOT

    feats = synthetic.generate(WORLD, 2500, seed=4)
    cfg = IndexConfig(exact_max=500, nprobe=16, candidates=100, calibration_sample=300, segment_candidates=0)
    spaces = methods.build_spaces(feats, {}, index=cfg)
    cals = methods.calibrate(spaces, feats.clips, 5, (2, 0.5), sample=cfg.calibration_sample)
    Index(feats.clips[KEEP], spaces, cals, {**MANIFEST, "index": cfg.__dict__}).save(tmp_path / "data/index")
    (tmp_path / "data/models").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIDSIM_UNVERIFIED", "1")
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "streamlit_app" / "main.py"), default_timeout=120).run()
        at.radio(key="source").set_value("Pick a library clip").run()
        assert any("of 2,500 clips shown" in c.value for c in at.caption)
        at.text_input(key="clip_filter").input("CLIP-123").run()  # any case
        options = at.selectbox(key="library_clip").options
        assert options == [f"clip-{i:04d}.mp4" for i in range(1230, 1240)]
        at.selectbox(key="library_clip").set_value("clip-1234.mp4").run()
        assert not at.exception
        hits = [m.value for m in at.markdown if m.value.startswith("**1. ")]
        assert len(hits) == 3 and all("clip\\-1234\\.mp4" in h for h in hits)
        assert any("No latent space" in i.value for i in at.info)
    finally:
        st.cache_resource.clear()
