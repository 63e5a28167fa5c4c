import subprocess
import sys
from pathlib import Path

CLI = Path(sys.executable).parent / "vidsim"


def test_a_missing_query_file_is_named_with_its_folder_before_anything_loads(tmp_path):
    out = subprocess.run([CLI, "query", "clips/nope.mp4"], cwd=tmp_path, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "clips/nope.mp4: no such file" in out.stderr
    assert "no index" not in out.stderr  # checked before the library is looked for


def _message(stderr: str) -> str:
    """The error text without the box typer draws around it."""
    return " ".join(w for w in stderr.split() if w.strip("│╭╮╰╯─"))


def test_outside_a_project_the_cli_says_how_to_name_one(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from vidsim.cli import app

    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, ["status"])
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert f"no vidsim project in {tmp_path} or above it" in _message(out.output) and "--project" in out.output
    out = CliRunner().invoke(app, ["status", "--project", str(tmp_path)])
    assert out.exit_code == 2 and "is not a vidsim project: it has no dvc.yaml" in _message(out.output)


def test_the_project_is_found_from_a_folder_inside_it(tmp_path):
    from vidsim.cli import find_project

    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "mylib" / "deep").mkdir(parents=True)
    assert find_project(tmp_path / "mylib" / "deep") == tmp_path
    assert find_project(tmp_path.parent) is None or find_project(tmp_path.parent) != tmp_path


def test_index_refuses_a_missing_or_videoless_folder_and_leaves_params_alone(tmp_path):
    from typer.testing import CliRunner

    from vidsim.cli import app

    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    params = "library:\n  dir: data/demo/library  # the demo\n"
    (tmp_path / "params.yaml").write_text(params)
    out = CliRunner().invoke(app, ["index", str(tmp_path / "nowhere"), "--project", str(tmp_path)])
    assert out.exit_code == 2 and f"{tmp_path / 'nowhere'}: no such folder" in _message(out.output)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("not a video")
    out = CliRunner().invoke(app, ["index", str(tmp_path / "notes"), "--project", str(tmp_path)])
    assert out.exit_code == 2 and "notes holds no video file (.mp4, .m4v" in _message(out.output)
    assert (tmp_path / "params.yaml").read_text() == params
