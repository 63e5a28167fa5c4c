"""`vidsim index`'s params.yaml edit: the library folder, its held-out sets, comments kept."""

from __future__ import annotations

import pytest
import yaml

from vidsim.project import use_library

PARAMS = """\
# The library to index
library:
  dir: data/demo/library  # the demo's
  labels: labels.csv

# held-out sets
evaluation:
  queries: data/demo/queries
  excerpts: data/demo/excerpts

search:
  k: 5
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "params.yaml").write_text(PARAMS)
    for folder in ("videos", "data/demo/library", "mine/queries"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "a.MKV").write_bytes(b"")
    return tmp_path


def test_a_new_library_drops_the_old_ones_held_out_sets(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    (outside / "deep").mkdir()
    (outside / "deep" / "b.webm").write_bytes(b"")
    change = use_library(project, outside)
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["library"] == {"dir": str(outside), "labels": "labels.csv"}
    assert params["evaluation"] == {} and params["search"] == {"k": 5}
    assert change.library == ("data/demo/library", str(outside))
    assert change.evaluation == ({"queries": "data/demo/queries", "excerpts": "data/demo/excerpts"}, {})
    text = (project / "params.yaml").read_text()
    assert "# The library to index" in text and "# held-out sets" in text


def test_a_folder_inside_the_project_is_named_relative_with_the_sets_given(project):
    use_library(project, project / "videos", labels="tags.csv", evaluation={"queries": project / "mine/queries"})
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["library"] == {"dir": "videos", "labels": "tags.csv"}
    assert params["evaluation"] == {"queries": "mine/queries"}


def test_the_same_library_keeps_its_sets(project):
    change = use_library(project, project / "data/demo/library")
    assert change.evaluation[0] == change.evaluation[1] == {"queries": "data/demo/queries",
                                                            "excerpts": "data/demo/excerpts"}
    assert (project / "params.yaml").read_text() == PARAMS


def test_refusals_name_the_folder(project):
    with pytest.raises(ValueError, match="nowhere: no such folder"):
        use_library(project, project / "nowhere")
    with pytest.raises(ValueError, match="queries\\): no such folder"):
        use_library(project, project / "videos", evaluation={"queries": project / "missing"})
    with pytest.raises(ValueError, match="has no params.yaml"):
        use_library(project / "videos", project / "videos")
    assert (project / "params.yaml").read_text() == PARAMS


def test_a_folder_name_the_shell_would_expand_is_refused(project):
    odd = project / "my $HOME videos"
    odd.mkdir()
    (odd / "a.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match=r"my \$HOME videos: dvc.yaml passes the folder .* \$ mean something"):
        use_library(project, odd)
    spaced = project / "my videos"  # spaces are fine: the stages quote the folder
    spaced.mkdir()
    (spaced / "a.mp4").write_bytes(b"")
    use_library(project, spaced)
    assert yaml.safe_load((project / "params.yaml").read_text())["library"]["dir"] == "my videos"
