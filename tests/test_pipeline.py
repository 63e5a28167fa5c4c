"""End to end: the real DVC pipeline on a small generated library, then the CLI on its output."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from tests.helpers import run as _run

pytestmark = pytest.mark.slow


def test_status_lists_failures_and_missing_streams(project, built):
    status = pd.read_csv(project / "data/index/status.csv", keep_default_na=False).set_index("clip")
    assert status.loc["broken.mp4", "status"] == "error"
    assert "not a readable video" in status.loc["broken.mp4", "reason"]
    assert status.loc["silent.mp4", "status"] == "ok"
    assert status.loc["silent.mp4", "reason"] == "no audio stream: indexed for visual only"
    assert "extract: 15 new, 0 cached, 1 failed" in built


def test_held_out_metrics_per_method_side_by_side(project, built):
    heldout = {m: json.loads((project / f"metrics/queries/{m}.json").read_text())
               for m in ("vidsim", "original", "raw")}
    for metrics in heldout.values():
        assert set(metrics) == {"audio", "visual", "audio_visual"}
        for m in metrics.values():
            assert 0 <= m["recall@1"] <= m["recall@5"] <= 1 and 0 < m["mAP"] <= 1 and 0 <= m["brier"] <= 1
            assert m["queries"] == 8  # 2 tracks x 2 themes x 2 held-out clips
    # two clearly different generated tracks: audio search finds the query's track
    assert heldout["vidsim"]["audio"]["recall@5"] >= 0.8
    loo = json.loads((project / "metrics/leave_one_out.json").read_text())
    assert set(loo) == {"vidsim", "original", "raw"}
    sweep = pd.read_csv(project / "metrics/queries_by_weight.csv")
    assert list(sweep["audio_weight"]) == [round(0.1 * i, 1) for i in range(11)]
    out = _run(["dvc", "metrics", "show", "metrics/queries"], project)
    assert "vidsim.json" in out and "original.json" in out and "raw.json" in out
    assert "audio_visual.recall@1" in out


def test_query_returns_the_clip_itself_first(project, built):
    clip = min(p.name for p in (project / "mylib").glob("generated-track-01--nature-*.mp4"))
    out = _run(["vidsim", "query", f"mylib/{clip}", "--modality", "audio_visual", "-k", "3", "--json",
                "--weights", "audio=0.6,visual=0.4"], project)
    result = json.loads(out[out.index("{"):])
    hits = result["hits"]
    assert result["method"] == "vidsim" and result["weights"] == {"audio": 0.6, "visual": 0.4}
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["clip"] == clip and set(hits[0]["scores"]) == {"audio", "visual"}
    assert hits[0]["probability"] >= hits[-1]["probability"]
    out = _run(["vidsim", "query", f"mylib/{clip}", "--modality", "audio_visual", "-k", "3", "--json",
                "--method", "original"], project)
    hits = json.loads(out[out.index("{"):])["hits"]
    assert hits[0]["clip"] == clip and hits[0]["distance"] < 1e-3
    table = _run(["vidsim", "query", f"mylib/{clip}", "--modality", "audio"], project)
    assert f"  1. {clip}  " in table and "% similar" in table and "track1" not in table
    original = _run(["vidsim", "query", f"mylib/{clip}", "--modality", "audio", "--original-format"], project)
    assert f"track1: {clip}, probability: " in original
    alone = _run(["vidsim", "query", clip, "--library-clip", "--exclude-self", "--json"], project)
    assert clip not in [h["clip"] for h in json.loads(alone[alone.index("{"):])["hits"]]


def test_cli_status(project, built, tmp_path):
    out = _run(["vidsim", "status"], project)
    assert "clips indexed: 15" in out and "efficientnet-lite0" in out
    assert "broken.mp4: not a readable video" in out
    # from a folder inside the project, and from anywhere with --project
    assert "clips indexed: 15" in _run(["vidsim", "status"], project / "mylib")
    assert "clips indexed: 15" in _run(["vidsim", "status", "--project", str(project)], tmp_path)


def test_repro_twice_does_nothing_and_one_new_clip_is_featurized_alone(project, built):
    again = _run(["dvc", "repro"], project)
    assert "Running stage" not in again
    shutil.copy(next((project / "data/demo/queries").glob("*.mp4")), project / "mylib/new.mp4")
    out = _run(["dvc", "repro"], project)
    assert "extract: 1 new, 15 cached, 1 failed" in out
    assert "featurize: 1 new, 15 cached, 0 failed" in out
    status = pd.read_csv(project / "data/index/status.csv", keep_default_na=False)
    assert "new.mp4" in set(status["clip"])


def test_excerpts_are_found_with_where_they_match(project, built):
    """An excerpt of the library's video (re-encoded) finds the video first, at the second it was
    cut from; the CLI's JSON carries the span on every hit, and the text names it."""
    labels = pd.read_csv(project / "data/demo/excerpts/labels.csv", keep_default_na=False)
    true = labels[labels["source"] != ""].iloc[0]
    out = _run(["vidsim", "query", f"data/demo/excerpts/{true['file']}", "-k", "3", "--json"], project)
    hits = json.loads(out[out.index("{"):])["hits"]
    assert hits[0]["clip"] == true["source"]
    assert all(set(h["match"]) >= {"query_start", "clip_start", "seconds"} for h in hits)
    m = hits[0]["match"]
    assert abs(m["clip_start"] - m["query_start"] - true["source_start"]) <= 1.0
    assert m["seconds"] >= 0.6 * true["seconds"] and hits[0]["same_footage"]
    text = _run(["vidsim", "query", f"data/demo/excerpts/{true['file']}", "-k", "1"], project)
    assert f"  1. {true['source']}  " in text and "of the query at 0:0" in text and "[same footage]" in text
    metrics = {m: json.loads((project / f"metrics/excerpts/{m}.json").read_text())
               for m in ("vidsim", "original", "raw")}
    av = metrics["vidsim"]["audio_visual"]
    assert (av["excerpts"], av["distractors"]) == (2, 2)
    assert av["recall@1"] == 1.0 and av["median_offset_error_s"] <= 1.0 and av["auc"] == 1.0
    assert 0 < av["separating_threshold"] < 1 and "separating_threshold" not in metrics["raw"]["audio_visual"]
    sweep = pd.read_csv(project / "metrics/excerpts_by_weight.csv")
    assert list(sweep["audio_weight"]) == [round(0.1 * i, 1) for i in range(11)]
    assert sweep["recall@1"].between(0, 1).all()


def test_duplicates_lists_the_re_upload_of_a_video(project, built):
    video = next((project / "mylib").glob("video-*.mp4")).name
    reupload = "reupload-" + video.removeprefix("video-")
    out = _run(["vidsim", "duplicates", "--json"], project)
    pairs = json.loads(out[out.index("["):])
    assert [sorted((p["clip"], p["duplicate"])) for p in pairs] == [sorted((video, reupload))]
    text = _run(["vidsim", "duplicates"], project)
    assert "1 near-duplicate pair " in text and f"{video}" in text and f"{reupload}" in text


def test_vidsim_index_builds_an_own_folder_without_the_demo(project, tmp_path):
    """`vidsim index DIR` points a fresh project at a folder outside it and runs the pipeline:
    nothing of the demo is built, no held-out set is scored, and the library answers queries."""
    proj = tmp_path / "proj"
    proj.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(project / name, proj)
    shutil.copytree(project / "demo", proj / "demo", ignore=shutil.ignore_patterns("dvc.lock"))
    shutil.copytree(project / "vidsim", proj / "vidsim")
    _run(["dvc", "init", "--no-scm", "-q"], proj)
    videos = tmp_path / "my videos"
    videos.mkdir()
    for clip in sorted((project / "data/demo/library").glob("generated-track-0*--nature-*.mp4"))[:4]:
        shutil.copy(clip, videos)
    out = _run(["vidsim", "index", str(videos), "--project", str(proj)], tmp_path)
    assert f"library.dir: {videos}" in out and "evaluation: {} (leave-one-out over the library only)" in out
    assert "demo/dvc.yaml" not in out and "heldout" not in out and "Running stage 'evaluate'" in out
    assert not (proj / "data/demo").exists() and not (proj / "data/sources").exists()
    status = pd.read_csv(proj / "data/index/status.csv", keep_default_na=False)
    assert sorted(status["clip"]) == sorted(p.name for p in videos.glob("*.mp4"))
    assert set(json.loads((proj / "metrics/leave_one_out.json").read_text())) == {"vidsim", "original", "raw"}
    assert "evaluation: {}" in (proj / "params.yaml").read_text()
    assert "Running stage" not in _run(["dvc", "repro"], proj)
    clip = status["clip"].iloc[0]
    out = _run(["vidsim", "query", str(videos / clip), "--json", "-k", "2", "--project", str(proj)], tmp_path)
    assert json.loads(out[out.index("{"):])["hits"][0]["clip"] == clip


def test_a_hit_without_sound_says_so_instead_of_a_probability(project, built, clips):
    """silent.mp4 (no audio stream) among the audio-visual hits of a clip with sound: fused with
    the audio prior, shown as "audio: no sound", and listed as missing in the JSON."""
    out = _run(["vidsim", "query", str(clips["av5"]), "-k", "16", "--json"], project)
    hit = next(h for h in json.loads(out[out.index("{"):])["hits"] if h["clip"] == "silent.mp4")
    assert hit["missing"] == ["audio"] and set(hit["scores"]) == {"audio", "visual"}
    text = _run(["vidsim", "query", str(clips["av5"]), "-k", "16"], project)
    line = next(x for x in text.splitlines() if ". silent.mp4 " in x)
    assert "(audio: no sound  visual " in line
