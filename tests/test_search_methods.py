"""Search methods on small synthetic libraries: modality inputs, spaces, calibration, late fusion,
the Library API (fused ranking, weights, more like this, exclusions) and the metrics."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vidsim import calibration, methods, vae
from vidsim.calibration import Calibration, fit
from vidsim.config import VAEConfig
from vidsim.dataset import Features, load_features
from vidsim.evaluation import evaluate_set, held_out, summarise, with_labels
from vidsim.index import Index
from vidsim.modalities import ClipFeatures, clip_input, parse_weights
from vidsim.search import Library
from vidsim.spaces import SegmentSpace

D = 8  # a tiny "embedding" width


def _clip(rng, track: int, theme: int, seconds: int = 4, dim: int = D) -> ClipFeatures:
    """Audio windows around a per-track centre, frames around a per-theme centre."""
    a_centre = np.random.default_rng(100 + track).normal(0, 1, 136)
    v_centre = np.random.default_rng(200 + theme).normal(0, 1, dim)
    audio_seconds = (a_centre + rng.normal(0, 0.3, (seconds, 136))).astype(np.float32)
    frames = (v_centre + rng.normal(0, 0.3, (seconds, dim))).astype(np.float32)
    frames /= np.linalg.norm(frames, axis=1, keepdims=True)
    audio = np.concatenate([audio_seconds.mean(0), [120.0, 0.5]]).astype(np.float32)
    return ClipFeatures(audio=audio, frames=frames, audio_seconds=audio_seconds)


def _features(rng, pairs: list[tuple[int, int]], prefix: str = "", dim: int = D,
              frames: dict[int, np.ndarray] | None = None) -> Features:
    from vidsim.dataset import stack

    feats = {f"{i:064d}": _clip(rng, t, v, dim=dim) for i, (t, v) in enumerate(pairs)}
    for i, rows in (frames or {}).items():
        feats[f"{i:064d}"].frames = rows
    status = pd.DataFrame({
        "clip": [f"{prefix}t{t}-v{v}-{i}.mp4" for i, (t, v) in enumerate(pairs)],
        "path": [f"/lib/{prefix}{i}.mp4" for i in range(len(pairs))], "status": "ok", "reason": "",
        "sha256": list(feats), "duration": 4.0, "has_audio": True, "has_video": True,
        "audio_label": [f"t{t}" for t, _ in pairs], "visual_label": [f"v{v}" for _, v in pairs]})
    return stack(status, feats, dim)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Library, Features]:
    rng = np.random.default_rng(0)
    lib_pairs = [(t, v) for t in range(3) for v in range(2) for _ in range(3)]  # 18 clips
    feats = _features(rng, lib_pairs)
    models = {}
    for m in ("audio", "visual", "audio_visual"):
        _, x = feats.matrix(m)
        model, norm, _ = vae.train_vae(x, VAEConfig(epochs=20), 0, progress=False)
        models[m] = (model, norm)
    spaces = methods.build_spaces(feats, models)
    cals = methods.calibrate(spaces, feats.clips, 5)
    manifest = {"audio": {}, "extract": {}, "search": {"k": 5, "method": "vidsim"},
                "encoder": {"model": "tiny", "pretrained": "random", "weights": "random", "dim": D,
                            "image_size": 32, "has_text": False}}
    out = tmp_path_factory.mktemp("index")
    keep = ["clip", "path", "sha256", "duration", "has_audio", "has_video", "audio_label", "visual_label"]
    Index(feats.clips[keep], spaces, cals, manifest).save(out)
    models_dir = tmp_path_factory.mktemp("models")
    for m, (model, norm) in models.items():
        vae.save(models_dir / f"{m}.safetensors", model, norm, {})
    queries = _features(np.random.default_rng(1), [(t, v) for t in range(3) for v in range(2)], "q-")
    return Library.load(out, models_dir), queries


def test_query_and_batch_paths_build_the_same_inputs():
    feats = _features(np.random.default_rng(2), [(0, 0), (1, 1), (2, 0)])
    for m in ("audio", "visual", "audio_visual"):
        rows, x = feats.matrix(m)
        one = np.stack([feats.clip(i).vector(m) for i in rows])
        np.testing.assert_array_equal(one, x)
    assert clip_input(np.ones(138), np.zeros(D), "audio_visual").shape == (138 + D,)
    np.testing.assert_array_equal(feats.clip(1).segments("visual"),
                                  feats.seconds["visual"][feats.offsets["visual"][1]:feats.offsets["visual"][2]])


def test_features_round_trip(tmp_path):
    feats = _features(np.random.default_rng(3), [(0, 0), (1, 1)])
    feats.save(tmp_path)
    feats.clips.to_csv(tmp_path / "status.csv", index=False)
    back = load_features(tmp_path)
    np.testing.assert_array_equal(back.seconds["audio"], feats.seconds["audio"])
    np.testing.assert_array_equal(back.offsets["visual"], feats.offsets["visual"])


def test_stacking_into_a_folder_writes_what_load_features_reads(tmp_path):
    from vidsim.dataset import stack

    feats = _features(np.random.default_rng(3), [(0, 0), (1, 1), (2, 0)])
    per_clip = {sha: feats.clip(i) for i, sha in enumerate(feats.clips["sha256"])}
    per_clip[feats.clips["sha256"][1]].audio_seconds = None  # a clip without sound
    streamed = stack(feats.clips, per_clip, D, tmp_path)
    feats.clips.to_csv(tmp_path / "status.csv", index=False)
    back = load_features(tmp_path)
    in_memory = stack(feats.clips, per_clip, D)
    for m in ("audio", "visual"):
        np.testing.assert_array_equal(back.seconds[m], in_memory.seconds[m])
        np.testing.assert_array_equal(back.offsets[m], in_memory.offsets[m])
    assert back.offsets["audio"].tolist() == [0, 4, 4, 8] and isinstance(back.seconds["visual"], np.memmap)
    np.testing.assert_array_equal(back.visual, streamed.visual)
    assert not list(tmp_path.glob("arrays/*.part"))


def test_weights_parse_and_refuse():
    assert parse_weights("audio=3,visual=1", {}) == {"audio": 0.75, "visual": 0.25}
    assert parse_weights(None, {"audio": 1, "visual": 1}) == {"audio": 0.5, "visual": 0.5}
    assert parse_weights("audio=1,visual=0", {}) == {"audio": 1.0, "visual": 0.0}
    for bad, msg in (("smell=1", "unknown weight smell"), ("audio=x", "not a number"),
                     ("audio", "modality=number"), ("audio=0,visual=0", "above zero"), ("audio=-1", "negative")):
        with pytest.raises(ValueError, match=msg):
            parse_weights(bad, {})


def test_segment_space_finds_the_clip_a_query_excerpt_comes_from():
    rng = np.random.default_rng(4)
    clips = [rng.normal(size=(n, 16)).astype(np.float32) for n in (5, 3, 7)]
    offsets = np.cumsum([0] + [len(c) for c in clips])
    space = SegmentSpace.build("visual", np.arange(3), offsets, np.concatenate(clips), standardise=False)
    excerpt = ClipFeatures(audio=None, frames=clips[2][2:5])  # three seconds from inside clip 2
    d = space.distances(space.query(excerpt))
    assert d.shape == (3,) and np.argmin(d) == 2 and d[2] == pytest.approx(0.0, abs=1e-5)
    assert np.all(d[:2] > 0.3)


def test_a_long_clip_is_matched_within_one_stretch_as_long_as_the_query():
    """Each second of the query has a close match somewhere in a long video of other material,
    but never all of them within one query-long stretch: the short clip the query shares its
    seconds with stays first, and the long video's score is its best stretch's (scan and re-ranking
    of candidates agree)."""
    rng = np.random.default_rng(6)
    query = _unit(rng.normal(size=(4, 16)))
    near = _unit(query + 0.5 * _unit(rng.normal(size=(4, 16))))  # every second fairly close
    scattered = _unit(rng.normal(size=(60, 16)))
    scattered[[3, 20, 37, 55]] = _unit(query + 0.2 * _unit(rng.normal(size=(4, 16))))  # closer, far apart
    clips = [near, scattered]
    offsets = np.cumsum([0] + [len(c) for c in clips])
    space = SegmentSpace.build("visual", np.arange(2), offsets, np.concatenate(clips), standardise=False,
                               centre=False)
    d = space.distances(query)
    assert d[0] < d[1]
    sims = query @ scattered.T
    best_stretch = max(sims[:, j:j + 4].max(axis=1).mean() for j in range(57))
    assert d[1] == pytest.approx(1 - best_stretch, abs=1e-5)
    assert 1 - sims.max(axis=1).mean() < d[0]  # matched whole, the long clip would have won
    np.testing.assert_allclose(space.block_distances([query], space.block(np.arange(2)))[0], d, atol=1e-6)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_fusion_is_the_product_at_equal_weights_and_follows_the_weights():
    pa, pv = np.array([0.9, 0.5, 0.1]), np.array([0.2, 0.5, 0.95])
    np.testing.assert_allclose(methods.fuse({"audio": pa, "visual": pv}, {"audio": 0.5, "visual": 0.5}), pa * pv)
    only_audio = methods.fuse({"audio": pa, "visual": pv}, {"audio": 1.0, "visual": 0.0})
    np.testing.assert_allclose(only_audio, pa)
    leaning = methods.fuse({"audio": pa, "visual": pv}, {"audio": 0.9, "visual": 0.1})
    assert np.argmax(leaning) == 0 and np.argmax(methods.fuse({"audio": pa, "visual": pv},
                                                              {"audio": 0.1, "visual": 0.9})) == 2
    with pytest.raises(ValueError, match="no modality to fuse"):
        methods.fuse({"audio": pa}, {"visual": 1.0})


def test_logistic_calibration_decreases_with_distance_and_is_calibrated():
    rng = np.random.default_rng(5)
    d = np.concatenate([rng.normal(0.2, 0.1, 500), rng.normal(0.8, 0.1, 500)])[None, :]
    rel = np.concatenate([np.ones(500, bool), np.zeros(500, bool)])[None, :]
    cal = fit(d, rel, 5)
    assert cal.kind == "logistic" and cal.b < 0
    p = cal(d[0])
    assert p[:500].mean() > 0.9 and p[500:].mean() < 0.1
    assert np.mean((p - rel[0]) ** 2) < 0.05
    assert fit(d, None, 5).kind == "kernel"
    assert Calibration("kernel", scale=1.0)(np.array([0.0]))[0] == 1.0


def test_logistic_calibration_separates_rare_relevant_pairs():
    """A million-clip library's sample: 1 relevant pair in 10,000 (the others weighted 100 each),
    far apart from the rest; the fit must still give a close pair a high probability."""
    rng = np.random.default_rng(6)
    d = np.concatenate([rng.normal(0.4, 0.03, 100), rng.normal(0.9, 0.05, 10_000)])[None, :]
    rel = (np.arange(d.shape[1]) < 100)[None, :]
    w = np.where(rel, 1.0, 100.0)
    cal = fit(d, rel, 5, w)
    assert cal.prior == pytest.approx(100 / (100 + 1_000_000))
    p = cal(np.array([0.4, 0.5, 0.8]))
    assert p[0] > 0.95 and p[2] < 0.01, p


def test_many_pairs_are_fitted_in_groups_of_nearly_equal_distance(monkeypatch):
    """Above 2 x FIT_GROUPS pairs the fit takes runs of nearly equal distance as one relevant and one
    other row each (a million clips' calibration: 1.6 M pairs a space); it gives the probabilities
    of the fit over every pair."""
    rng = np.random.default_rng(8)
    d = np.concatenate([rng.gamma(2.0, 0.3, 3000), rng.normal(3.0, 0.4, 27_000)])
    rel = rng.random(len(d)) < 1 / (1 + np.exp(-(8 - 9 * d)))
    w = np.where(np.arange(len(d)) < 3000, 1.0, 50.0)
    gd, gy, gw = calibration.grouped_pairs(d, rel, w, groups=500)
    assert len(gd) <= 1000 and gw.sum() == pytest.approx(w.sum())
    assert gw[gy].sum() == pytest.approx(w[rel].sum())  # each run's relevant weight on its relevant row
    assert np.all(np.diff(gd[gy]) >= 0) and np.all(np.diff(gd[~gy]) >= 0)  # runs in order of distance
    whole = fit(d[None], rel[None], 5, w[None])
    monkeypatch.setattr(calibration, "FIT_GROUPS", 500)
    grouped = fit(d[None], rel[None], 5, w[None])
    assert grouped.prior == whole.prior and grouped.scale == whole.scale
    at = np.linspace(0.0, 2.0, 21)
    np.testing.assert_allclose(grouped(at), whole(at), atol=1e-4)
    assert grouped(at)[0] > 0.99 and grouped(at)[-1] < 0.01


def test_library_fused_search_ranks_the_right_pair_first(library):
    lib, queries = library
    assert lib.methods == ["vidsim", "original", "raw"]
    assert lib.modalities_of("vidsim") == ["audio", "visual", "audio_visual"]
    q = queries.clip(3)  # track 1, theme 1
    result = lib.query_features(q, "audio_visual", k=5, weights="audio=0.5,visual=0.5")
    assert result.method == "vidsim" and result.weights == {"audio": 0.5, "visual": 0.5}
    top = lib.clip_info(result.hits[0].clip)
    assert (top["audio_label"], top["visual_label"]) == ("t1", "v1")
    hit = result.hits[0]
    assert hit.distance is None and set(hit.scores) == {"audio", "visual"}
    assert hit.probability == pytest.approx(hit.scores["audio"] * hit.scores["visual"])
    assert [h.probability for h in result.hits] == sorted((h.probability for h in result.hits), reverse=True)
    # all weight on the picture: the top hits share the theme, whatever their track
    visual_only = lib.query_features(q, "audio_visual", k=6, weights={"audio": 0, "visual": 1})
    assert {lib.clip_info(h.clip)["visual_label"] for h in visual_only.hits} == {"v1"}


def test_more_like_this_and_exclusions(library):
    lib, _ = library
    clip = lib.index.clips["clip"].iloc[0]
    for method in ("vidsim", "original", "raw"):
        for m in lib.modalities_of(method):
            assert lib.query_clip(clip, m, k=3, method=method).hits[0].clip == clip
            assert clip not in [h.clip for h in lib.query_clip(clip, m, k=3, method=method, exclude_self=True).hits]
    orig = lib.query_clip(clip, "audio", k=4, method="original")
    assert sum(h.probability for h in orig.hits) == pytest.approx(1.0)  # softmax2 sums to 1
    with pytest.raises(KeyError, match="not in the library"):
        lib.query_clip("nope.mp4", "audio")
    with pytest.raises(ValueError, match="unknown method"):
        lib.query_clip(clip, "audio", method="magic")
    with pytest.raises(ValueError, match="k must be at least 1"):
        lib.query_clip(clip, "audio", k=0)


def test_query_without_audio_is_fused_on_the_picture_alone(library):
    lib, queries = library
    q = queries.clip(0)
    silent = ClipFeatures(audio=None, frames=q.frames, audio_seconds=None)
    fused = lib.query_features(silent, "audio_visual", k=3)
    assert fused.weights == {"visual": 1.0}
    with pytest.raises(ValueError, match="no audio stream"):
        lib.query_features(silent, "audio")


def test_held_out_metrics_for_every_method(library):
    lib, queries = library
    for method in lib.methods:
        metrics = held_out(lib, queries, method)
        assert set(metrics) == {"audio", "visual", "audio_visual"}
        for m in metrics.values():
            assert 0 <= m["recall@1"] <= m["recall@5"] <= 1 and 0 < m["mAP"] <= 1 and m["queries"] == 6
    best = held_out(lib, queries, "vidsim")
    assert best["audio"]["recall@1"] == 1.0 and best["visual"]["recall@1"] == 1.0
    assert best["audio_visual"]["recall@1"] == 1.0


def test_summarise_values():
    rankings = [(np.array([False, True, False, True]), np.array([0.9, 0.8, 0.1, 0.1])),
                (np.array([True, False, False, False]), np.array([1.0, 0.0, 0.0, 0.0]))]
    m = summarise(rankings, k=2)
    assert m["recall@1"] == 0.5 and m["recall@5"] == 1.0
    assert m["mAP"] == pytest.approx(((1 / 2 + 2 / 4) / 2 + 1) / 2)
    assert m["brier"] == pytest.approx((0.81 + 0.04 + 0 + 0) / 4)


def test_summarise_at_a_depth_cut_counts_relevant_clips_beyond_it():
    """A ranking cut at depth 3: the first query's 5 relevant clips lie beyond the cut (a miss, not
    left out); the second found 1 of its 4 at rank 2 (AP over min(4, 3)); a query whose label the
    library lacks is left out."""
    rankings = [(np.array([False, False, False]), np.zeros(3), 5),
                (np.array([False, True, False]), np.zeros(3), 4),
                (np.array([False, False, False]), np.zeros(3), 0)]
    m = summarise(rankings, k=2, depth=3)
    assert m["queries"] == 2 and m["recall@1"] == 0.0 and m["recall@5"] == 0.5
    assert m["mAP@3"] == round((0 + (1 / 2) / 3) / 2, 4)


def test_a_held_out_sets_labels_are_checked_and_taken_from_its_labels_csv():
    clips = pd.DataFrame({"clip": ["a.mp4", "b.mp4"], "audio_label": ["old", "old"], "visual_label": ["x", "x"]})
    feats = Features(clips, np.zeros((2, 138), np.float32), np.zeros((2, 4), np.float32), {}, {})
    labels = pd.DataFrame({"file": ["b.mp4"], "audio_label": ["song"], "visual_label": ["sea"]})
    relabelled = with_labels(feats, labels).clips
    assert relabelled[["audio_label", "visual_label"]].values.tolist() == [["", ""], ["song", "sea"]]
    assert feats.clips["audio_label"].tolist() == ["old", "old"]  # a copy
    with pytest.raises(ValueError, match="no source, source_start column: a held-out excerpts set's"):
        evaluate_set("excerpts", None, feats, labels)
    with pytest.raises(ValueError, match="unknown evaluation set kind 'clips': use one of queries, excerpts"):
        evaluate_set("clips", None, feats, labels)

TEXT = "a red square on a night sky"


@pytest.fixture(scope="module")
def text_library(tmp_path_factory) -> tuple[Library, Path]:
    return _text_library(tmp_path_factory.mktemp("text-index"))


def _text_library(out: Path) -> tuple[Library, Path]:
    """A library built with the tiny random open_clip model, which has a text tower; clip 2 holds
    one frame whose embedding is exactly the text's."""
    from vidsim.features import visual

    model, _, info = visual.create_encoder("tiny-test", "random")
    t = visual.embed_text(model, "tiny-test", TEXT)
    rng = np.random.default_rng(7)
    others = rng.normal(size=(4, info.dim)).astype(np.float32)
    others /= np.linalg.norm(others, axis=1, keepdims=True)
    frames = {2: np.concatenate([others[:3], t[None, :]]).astype(np.float32)}
    feats = _features(rng, [(0, 0), (0, 1), (1, 0), (1, 1)], dim=info.dim, frames=frames)
    spaces = methods.build_spaces(feats, {}, text=info.has_text)
    manifest = {"audio": {}, "extract": {}, "search": {"k": 3, "method": "vidsim"},
                "encoder": dataclasses.asdict(info)}
    keep = ["clip", "path", "sha256", "duration", "has_audio", "has_video", "audio_label", "visual_label"]
    Index(feats.clips[keep], spaces, methods.calibrate(spaces, feats.clips, 3), manifest).save(out / "index")
    (out / "models").mkdir()
    return Library.load(out / "index", out / "models"), out


def test_text_query_finds_the_clip_with_the_matching_frame(text_library):
    lib, _ = text_library
    assert lib.has_text
    result = lib.query_text(TEXT, k=3)
    assert result.modality == "text" and len(result.hits) == 3
    assert result.hits[0].clip == lib.index.clips["clip"].iloc[2]
    assert result.hits[0].probability == pytest.approx(1.0)
    assert all(0 <= h.probability < 1 for h in result.hits[1:])
    with pytest.raises(ValueError, match="empty"):
        lib.query_text("  ")


def test_text_joins_late_fusion_with_its_weight(text_library):
    lib, _ = text_library
    clip = lib.index.clips["clip"].iloc[0]
    results = lib.search_all(clip=clip, k=4, text=TEXT)
    assert set(results) == {"audio", "visual", "audio_visual", "text"}
    fused = results["audio_visual"]
    assert fused.weights == pytest.approx({"audio": 1 / 3, "visual": 1 / 3, "text": 1 / 3}, abs=1e-4)
    assert all(set(h.scores) == {"audio", "visual", "text"} for h in fused.hits)
    by_text = lib.search_all(clip=clip, k=1, text=TEXT, weights="audio=0,visual=0,text=1")
    assert by_text["audio_visual"].hits[0].clip == lib.index.clips["clip"].iloc[2]


def test_text_is_refused_with_a_reason_without_a_text_tower(library):
    lib, _ = library
    assert not lib.has_text
    with pytest.raises(ValueError, match="need an encoder with a CLIP text tower"):
        lib.query_text("anything")


@pytest.mark.slow
def test_cli_text_query_end_to_end(text_library, tmp_path):
    import json
    import subprocess
    import sys

    lib, root = text_library
    cli = Path(sys.executable).parent / "vidsim"
    out = subprocess.run([cli, "query", "--text", TEXT, "-k", "2", "--json", "--index", root / "index",
                          "--models", root / "models", "--unverified"], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    result = json.loads(out.stdout)
    assert result["modality"] == "text" and result["query"] == TEXT
    assert result["hits"][0]["clip"] == lib.index.clips["clip"].iloc[2]
    assert result["hits"][0]["scores"] == {"text": pytest.approx(1.0)}


def test_query_expansion_pulls_the_query_hits_neighbours_up_and_keeps_exact_matches_first():
    # clip 0 = the query's exact copy, clip 1 close to it, clip 2 close to clip 1 but not to the query,
    # clip 3 as far from the query as clip 2 but unlike clips 0 and 1
    rows = [np.array([[1, 0, 0, 0]]), np.array([[0.9, 0.44, 0, 0]]), np.array([[0.5, 0.87, 0, 0]]),
            np.array([[0.5, 0, 0.87, 0]])]
    clips = [r.astype(np.float32) / np.linalg.norm(r) for r in rows]
    space = SegmentSpace.build("visual", np.arange(4), np.arange(5), np.concatenate(clips), standardise=False,
                               centre=False)
    q = clips[0]
    plain = space.distances(q)
    assert plain[2] == pytest.approx(plain[3], abs=1e-3)
    expanded = methods.expanded_distances(space, q, methods.Expansion(n=2, mix=0.5))
    assert expanded[0] == 0.0 and expanded[2] < expanded[3]
    assert np.argsort(expanded).tolist()[:2] == [0, 1]
    assert methods.expansion_for("original", 2, 0.5) is None and methods.expansion_for("vidsim", 0, 0.5) is None


def test_search_all_leaves_out_an_uploads_exact_copies(library):
    lib, queries = library
    feats = queries.clip(0)  # track 0, theme 0: library clips 0-2 are its nearest
    first = lib.search_all(feats=feats, k=3)["audio_visual"].hits[0].clip
    sha = lib.clip_info(first)["sha256"]  # as if the upload had the same bytes as that clip
    out = lib.search_all(feats=feats, k=3, exclude_self=True, sha256=sha)
    assert all(first not in [h.clip for h in r.hits] for r in out.values())
    kept = lib.search_all(feats=feats, k=3, exclude_self=False, sha256=sha)
    assert kept["audio_visual"].hits[0].clip == first


def test_large_library_helpers_sample_points_and_find_clips(library):
    lib, _ = library
    names = lib.index.clips["clip"].tolist()
    assert len(lib.points("audio")) == len(names)
    sample = lib.points("audio", limit=5, keep=[names[-1]])
    assert 5 <= len(sample) <= 6 and names[-1] in set(sample["clip"])
    assert list(sample.columns[-2:]) == ["z0", "z1"]
    assert lib.find_clips("T1-V0", limit=50) == [n for n in names if "t1-v0" in n]
    assert lib.find_clips("", limit=3) == names[:3] and lib.find_clips("no such clip") == []
    assert lib.rows_of([names[4], "missing.mp4"]).tolist() == [4, -1]
    with pytest.raises(KeyError, match="not in the library") as err:
        lib.row_of("missing.mp4")
    assert str(err.value) == "'missing.mp4' is not in the library"  # no doubled quotes in messages


def test_a_hit_shows_what_it_lacks_instead_of_the_prior_it_was_fused_with():
    from vidsim.search import Hit

    hit = Hit(rank=1, clip="a.mp4", path="/a.mp4", probability=0.4, distance=None,
              scores={"audio": 0.5, "visual": 0.812}, missing=("audio",))
    assert hit.score_text() == "audio: no sound · visual 81%"
    both = Hit(2, "b.mp4", "/b.mp4", 0.4, None, {"audio": 0.5, "visual": 0.8})
    assert both.score_text("  ") == "audio 50%  visual 80%"
    assert hit.to_dict()["missing"] == ["audio"]
