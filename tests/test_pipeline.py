"""End to end: the real DVC pipeline on a small generated library, then the CLI on its output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import make_clip

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(args, cwd):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A DVC project with the repository's pipeline, small params, and a user library `mylib`."""
    proj = tmp_path_factory.mktemp("proj")
    shutil.copy(ROOT / "dvc.yaml", proj)
    # the stages' code deps; the stages themselves run the installed vidsim, the same code
    shutil.copytree(ROOT / "vidsim", proj / "vidsim", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["sources"]["generated"] = True
    params["demo"].update(tracks=2, themes=["nature", "abstract"], clips_per_pair=3,
                          clip_seconds=4.0, width=160, height=90, fps=10, start_s=5.0)
    params["library"] = {"dir": "mylib", "labels": "mylib/labels.csv"}
    params["train"].update(epochs=300)
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    _run(["dvc", "init", "--no-scm", "-q"], proj)
    _run(["dvc", "config", "core.analytics", "false"], proj)
    _run(["dvc", "repro", "demo"], proj)
    lib = proj / "mylib"
    shutil.copytree(proj / "data/demo/library", lib)
    (lib / "broken.mp4").write_bytes(np.random.default_rng(1).bytes(5000))
    make_clip(lib / "silent.mp4", 3, audio=False)
    return proj


@pytest.fixture(scope="module")
def built(project) -> str:
    return _run(["dvc", "repro"], project)


def test_status_lists_failures_and_missing_streams(project, built):
    status = pd.read_csv(project / "data/index/status.csv", keep_default_na=False).set_index("clip")
    assert status.loc["broken.mp4", "status"] == "error"
    assert "not a readable video" in status.loc["broken.mp4", "reason"]
    assert status.loc["silent.mp4", "status"] == "ok"
    assert status.loc["silent.mp4", "reason"] == "no audio stream: indexed for visual only"
    assert "extract: 13 new, 0 cached, 1 failed" in built


def test_metrics_per_modality(project, built):
    metrics = json.loads((project / "metrics/eval.json").read_text())
    assert set(metrics) == {"audio", "visual", "audio_visual"}
    for m in metrics.values():
        assert 0 <= m["recall@1"] <= m["recall@5"] <= 1 and 0 < m["mAP"] <= 1
    # two clearly different generated tracks: audio search finds the same track
    assert metrics["audio"]["recall@5"] >= 0.8
    out = _run(["dvc", "metrics", "show"], project)
    assert "recall@1" in out and "audio_visual" in out


def test_query_returns_the_clip_itself_first(project, built):
    clip = min(p.name for p in (project / "mylib").glob("generated-track-01--nature-*.mp4"))
    out = _run(["vidsim", "query", f"mylib/{clip}", "--modality", "audio_visual", "-k", "3", "--json"],
               project)
    hits = json.loads(out[out.index("{"):])["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["clip"] == clip and hits[0]["distance"] < 1e-3
    assert hits[0]["probability"] > hits[-1]["probability"]
    table = _run(["vidsim", "query", f"mylib/{clip}", "--modality", "audio"], project)
    assert f"track1: {clip}, probability: " in table


def test_cli_status(project, built):
    out = _run(["vidsim", "status"], project)
    assert "clips indexed: 13" in out and "efficientnet-lite0" in out
    assert "broken.mp4: not a readable video" in out


def test_repro_twice_does_nothing_and_one_new_clip_is_featurized_alone(project, built):
    again = _run(["dvc", "repro"], project)
    assert "Running stage" not in again
    shutil.copy(next((project / "data/demo/queries").glob("*.mp4")), project / "mylib/new.mp4")
    out = _run(["dvc", "repro"], project)
    assert "extract: 1 new, 13 cached, 1 failed" in out
    assert "featurize: 1 new, 13 cached, 0 failed" in out
    status = pd.read_csv(project / "data/index/status.csv", keep_default_na=False)
    assert "new.mp4" in set(status["clip"])
