"""The Ray engine of the featurize stage (a local Ray on this machine's cores): the same features,
the same dvc.lock outputs and the same cache as the local engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers import run
from vidsim import distributed
from vidsim.featurization import Job, featurize_library
from vidsim.media import MediaError, MediaInfo

pytest.importorskip("ray")
pytestmark = pytest.mark.slow


def _outs(lock: dict, stage: str) -> dict[str, str]:
    return {o["path"]: o.get("md5") for o in lock["stages"][stage]["outs"]}


def test_dvc_repro_on_ray_gives_the_local_engines_outputs(project, built, tmp_path):
    proj = tmp_path / "proj"
    shutil.copytree(project, proj, symlinks=True)
    local = yaml.safe_load((proj / "dvc.lock").read_text())
    shutil.rmtree(proj / "data/features")  # no cache: every clip is featurized again, on Ray
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["featurize"]["engine"] = "ray"
    (proj / "params.yaml").write_text(yaml.safe_dump(params))
    log = run(["dvc", "repro", "featurize"], proj)
    assert "featurize on Ray: 2 workers" in log and "(ray engine)" in log
    on_ray = yaml.safe_load((proj / "dvc.lock").read_text())
    assert _outs(on_ray, "featurize") == _outs(local, "featurize")
    assert len(list((proj / "data/features/cache").glob("*.npz"))) == len(
        list((project / "data/features/cache").glob("*.npz")))


def test_a_bad_file_on_ray_is_reported_like_on_the_local_engine(project, built, tmp_path, monkeypatch):
    from vidsim.config import AudioConfig, ExtractConfig
    from vidsim.io import read_status

    monkeypatch.chdir(project)  # the status table's paths are the project's
    status = read_status(project / "data/extracted/status.csv")
    ok = status[status["status"] == "ok"].head(2).copy()
    ok.loc[ok.index[1], "sha256"] = "0" * 64  # its bytes no longer hash to what extract recorded
    from vidsim.config import encoder_config
    from vidsim.encoder import load_from_config

    params = yaml.safe_load((project / "params.yaml").read_text())
    encoder = load_from_config(encoder_config(params["featurize"]["encoder"]))
    results = {}
    for engine in ("local", "ray"):
        out, feats = featurize_library(ok, project / "data/extracted", tmp_path / engine, encoder,
                                       AudioConfig(**params["featurize"]["audio"]), ExtractConfig(), engine)
        results[engine] = (out, feats)
    (local_status, local_feats), (ray_status, ray_feats) = results["local"], results["ray"]
    assert list(ray_status["status"]) == list(local_status["status"]) == ["ok", "error"]
    assert ray_status["reason"].iloc[1] == local_status["reason"].iloc[1] != ""
    (sha,) = local_feats
    np.testing.assert_array_equal(ray_feats[sha].frames, local_feats[sha].frames)
    np.testing.assert_array_equal(ray_feats[sha].audio_seconds, local_feats[sha].audio_seconds)


def test_media_errors_travel_between_processes_and_workers_are_bounded():
    import pickle

    err = pickle.loads(pickle.dumps(MediaError("/lib/a.mp4", "no video stream")))
    assert err.path == "/lib/a.mp4" and err.reason == "no video stream" and str(err) == "a.mp4: no video stream"
    assert distributed.workers_for(72, 2.0) == 2 and distributed.workers_for(1, 64.0) == 1
    job = Job("0" * 64, "a.mp4", MediaInfo(path="/lib/a.mp4", format_name="", duration=1.0, has_audio=False,
                                           has_video=True), None)
    assert pickle.loads(pickle.dumps(job)) == job
    assert list(distributed.run_ray([], None, None, None, Path("."), "")) == []
