"""Crashes and tampering: a killed pipeline resumes without loss; altered artifacts are refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import run
from vidsim.integrity import IntegrityError
from vidsim.io import read_status
from vidsim.search import Library

pytestmark = pytest.mark.slow


def _copy(project: Path, dest: Path) -> Path:
    shutil.copytree(project, dest, symlinks=True)
    return dest


def _index_arrays(proj: Path) -> dict[str, np.ndarray]:
    return {f.name: np.load(f, allow_pickle=False) for f in sorted((proj / "data/index/arrays").glob("*.npy"))}


def test_killed_featurize_resumes_and_ends_with_the_same_index(project, built, tmp_path):
    proj = _copy(project, tmp_path / "proj")
    reference = _index_arrays(proj)
    total = (read_status(proj / "data/extracted/status.csv")["status"] == "ok").sum()
    shutil.rmtree(proj / "data/features")
    cache = proj / "data/features/cache"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(["dvc", "repro"], cwd=proj, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(cache.glob("*.npz"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # as a crash would: no cleanup runs
    proc.wait()
    done = len(list(cache.glob("*.npz")))
    assert 3 <= done < total, f"{done} of {total} clips were cached before the kill"
    log = run(["dvc", "repro"], proj)
    assert f"featurize: {total - done} new, {done} cached, 0 failed" in log
    resumed = _index_arrays(proj)
    assert resumed.keys() == reference.keys()
    for key in reference:
        np.testing.assert_array_equal(resumed[key], reference[key], err_msg=key)


def test_an_upload_left_by_a_killed_server_is_removed(tmp_path, monkeypatch):
    """SIGTERM in the middle of a query skips clean-up; the next upload removes what it left."""
    import tempfile

    from vidsim.uploads import private_copy

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = ("import os, signal, tempfile; tempfile.tempdir = os.environ['ROOT']\n"
            "from vidsim.uploads import private_copy\n"
            "with private_copy(b'x' * 1000):\n    os.kill(os.getpid(), signal.SIGTERM)\n")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "ROOT": str(tmp_path)}, check=False)
    assert proc.returncode == -signal.SIGTERM
    left = list(tmp_path.glob("vidsim-upload-*"))
    assert len(left) == 1 and (left[0] / "upload").exists()
    with private_copy(b"y") as path:
        assert [p for p in tmp_path.glob("vidsim-upload-*")] == [path.parent]  # ours stays, the stale one went
    assert not list(tmp_path.glob("vidsim-upload-*"))


def test_without_dvc_lock_the_cli_refuses_unless_told(project, built, tmp_path):
    """Artifacts that no dvc.lock vouches for are not served silently: --unverified says so."""
    for name in ("index", "models"):
        shutil.copytree(project / "data" / name, tmp_path / "data" / name)
    cli = [Path(sys.executable).parent / "vidsim", "status"]
    out = subprocess.run(cli, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert out.returncode == 3 and "no dvc.lock in" in out.stderr and "--unverified" in out.stderr
    out = subprocess.run([*cli, "--unverified"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "clips indexed" in out.stdout


def test_only_media_files_inside_the_library_are_served(project, built, tmp_path, monkeypatch):
    monkeypatch.chdir(project)
    lib = Library.open()
    inside = lib.index.clips["path"].iloc[0]
    assert lib.playable(inside) == (project / inside).resolve()
    (project / "mylib" / "notes.txt").write_text("not a video")
    (project / "mylib" / "escape.mp4").symlink_to(project / "params.yaml")
    try:
        for path in ("/etc/passwd", "params.yaml", "mylib/notes.txt", "mylib/escape.mp4", "mylib/../dvc.yaml",
                     "mylib/missing.mp4"):
            assert lib.playable(path) is None, path
    finally:
        (project / "mylib" / "notes.txt").unlink()
        (project / "mylib" / "escape.mp4").unlink()


def test_models_outside_the_project_get_a_message_not_a_traceback(project, built, tmp_path):
    elsewhere = tmp_path / "models"
    shutil.copytree(project / "data/models", elsewhere)
    out = subprocess.run([Path(sys.executable).parent / "vidsim", "status", "--models", str(elsewhere)],
                         cwd=project, capture_output=True, text=True, check=False)
    assert out.returncode == 3 and "Traceback" not in out.stderr + out.stdout
    assert f"{elsewhere} is outside the DVC project" in out.stderr


def test_tampered_model_is_refused(project, built, tmp_path):
    proj = _copy(project, tmp_path / "proj")
    model = proj / "data/models/audio.safetensors"
    before = model.stat()
    data = bytearray(model.read_bytes())
    data[-10] ^= 0xFF  # one flipped bit pattern in the weights
    model.write_bytes(bytes(data))
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same time: only bytes tell
    with pytest.raises(IntegrityError, match="data/models does not match the hash recorded in dvc.lock"):
        Library.load(proj / "data/index", proj / "data/models", verify_root=proj)
    out = subprocess.run([Path(sys.executable).parent / "vidsim", "status"], cwd=proj,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 3 and "does not match the hash recorded in dvc.lock" in out.stderr


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["VIDSIM_PWNED"]),))


def test_pickled_index_is_refused_without_running_it(project, built, tmp_path, monkeypatch):
    proj = _copy(project, tmp_path / "proj")
    marker = tmp_path / "pwned"
    monkeypatch.setenv("VIDSIM_PWNED", str(marker))
    rows = json.loads((proj / "data/index/manifest.json").read_text())["spaces"]["original.audio"]["arrays"]["rows"]
    with open(proj / "data/index/arrays" / rows, "wb") as fh:
        np.save(fh, np.array([_Payload()], dtype=object), allow_pickle=True)
    # the hash check refuses it first
    with pytest.raises(IntegrityError, match="data/index does not match"):
        Library.load(proj / "data/index", proj / "data/models", verify_root=proj)
    # and even unchecked, arrays load without unpickling: a clear error, nothing executed
    with pytest.raises(IntegrityError, match="not a readable index"):
        Library.load(proj / "data/index", proj / "data/models")
    assert not marker.exists()


def test_a_crafted_header_is_refused_before_anything_is_allocated(tmp_path):
    """A checkpoint whose header claims a 1,000,000 -> 1300 VAE (5.2 GB) around tiny tensors is
    refused from the header: the loader's memory stays small."""
    import json
    import subprocess
    import sys

    import torch
    from safetensors.torch import save_file

    from vidsim import vae
    from vidsim.config import VAEConfig

    model, norm, _ = vae.train_vae(np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32),
                                   VAEConfig(hidden=3, latent=2, epochs=1), 0, progress=False)
    vae.save(tmp_path / "ok.safetensors", model, norm, {})
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({"norm.mean": torch.zeros(4), "norm.std": torch.ones(4)})
    header = {"n_in": 1_000_000, "hidden": 1300, "latent": 2}
    save_file(tensors, str(tmp_path / "crafted.safetensors"), metadata={"vidsim": json.dumps(header)})
    code = ("import resource, sys\nfrom vidsim import vae\nvae.load(sys.argv[1])\n"
            "try:\n    vae.load(sys.argv[2])\nexcept ValueError as e:\n    print(e)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n")
    out = subprocess.run([sys.executable, "-c", code, tmp_path / "ok.safetensors", tmp_path / "crafted.safetensors"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "crafted.safetensors: tensors do not match a 1000000 -> 1300 -> 2 VAE"
    assert int(out[1]) < 2000  # MB: building the claimed model alone would take 5,200


def test_long_audio_is_analysed_in_chunks_with_the_same_values(monkeypatch):
    """Chunks bound the memory of an hour of audio; the values are those of one piece, exactly."""
    from tests.test_audio import _music
    from vidsim.config import AudioConfig
    from vidsim.features import audio as audio_module
    from vidsim.features.audio import audio_analysis

    signal, cfg = _music(130.5), AudioConfig()
    monkeypatch.setattr(audio_module, "CHUNK_S", 10_000)
    whole_vec, whole_windows, _ = audio_analysis(signal, 44100, cfg)
    monkeypatch.setattr(audio_module, "CHUNK_S", 60)
    vec, windows, _ = audio_analysis(signal, 44100, cfg)
    assert windows.shape == whole_windows.shape == (131, 136)
    np.testing.assert_array_equal(windows, whole_windows)
    np.testing.assert_array_equal(vec, whole_vec)


def test_audio_analysis_stops_at_its_deadline(monkeypatch):
    import time

    from tests.test_audio import _music
    from vidsim.config import AudioConfig
    from vidsim.features import audio as audio_module
    from vidsim.features.audio import audio_analysis

    monkeypatch.setattr(audio_module, "CHUNK_S", 2)
    with pytest.raises(ValueError, match="the audio analysis took longer than its time limit"):
        audio_analysis(_music(10.0), 44100, AudioConfig(), deadline=time.monotonic() - 1)
