"""Shared fixtures: tiny clips, and a small DVC project built once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers import ROOT, make_clip, run


@pytest.fixture(scope="session", autouse=True)
def encoder_cache(tmp_path_factory) -> Path:
    """Encoder exports of this test session (and of the pipelines it runs) in a fresh folder."""
    path = tmp_path_factory.mktemp("vidsim-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("VIDSIM_CACHE", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "av5": make_clip(d / "av5.mp4", 5),
        "audio_only": make_clip(d / "audio_only.mp4", 3, video=False),
        "video_only": make_clip(d / "video_only.mp4", 3, audio=False),
    }


@pytest.fixture
def tone() -> tuple[np.ndarray, int]:
    """3 s of a 440 Hz sine at half scale, int16 mono 44.1 kHz."""
    rate = 44100
    t = np.arange(3 * rate) / rate
    return (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), rate


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    """A DVC project with the repository's pipeline, small params, and a user library `mylib`
    (the generated demo clips, one longer video and a re-upload of its end, plus a broken file and
    a clip without sound); two excerpts of the video and two distractors as excerpt queries."""
    proj = tmp_path_factory.mktemp("proj")
    shutil.copy(ROOT / "dvc.yaml", proj)
    (proj / "demo").mkdir()
    shutil.copy(ROOT / "demo/dvc.yaml", proj / "demo")
    # the stages' code deps; the stages themselves run the installed vidsim, the same code
    shutil.copytree(ROOT / "vidsim", proj / "vidsim", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["sources"]["generated"] = True
    params["demo"].update(tracks=2, themes=["nature", "abstract"], clips_per_pair=3,
                          clip_seconds=4.0, width=160, height=90, fps=10, start_s=5.0,
                          videos=1, outside_videos=1, video_seconds=[18.0, 22.0], photo_seconds=6.0,
                          excerpts_per_video=2, excerpt_seconds=[5.0, 8.0], reuploads=1, reupload_seconds=6.0)
    params["library"] = {"dir": "mylib", "labels": "labels.csv"}
    params["evaluation"] = {"queries": "data/demo/queries", "excerpts": "data/demo/excerpts"}
    params["train"].update(epochs=300)
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    run(["dvc", "init", "--no-scm", "-q"], proj)
    run(["dvc", "config", "core.analytics", "false"], proj)
    run(["dvc", "repro", "demo/dvc.yaml:demo"], proj)
    lib = proj / "mylib"
    shutil.copytree(proj / "data/demo/library", lib)
    (lib / "broken.mp4").write_bytes(np.random.default_rng(1).bytes(5000))
    make_clip(lib / "silent.mp4", 3, audio=False)
    return proj


@pytest.fixture(scope="session")
def built(project) -> str:
    """The log of the first full `dvc repro` of `project`."""
    return run(["dvc", "repro"], project)
