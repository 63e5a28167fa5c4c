"""The Streamlit app through streamlit.testing: with and without a built library, queries, bad uploads."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.helpers import ROOT

APP = str(ROOT / "streamlit_app" / "main.py")


@pytest.fixture
def app_in(monkeypatch):
    """An AppTest of the app run from a given folder (where it looks for data/index)."""

    def make(folder) -> AppTest:
        monkeypatch.chdir(folder)
        st.cache_resource.clear()
        at = AppTest.from_file(APP, default_timeout=120)
        return at.run()

    yield make
    st.cache_resource.clear()


def _hits(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if re.match(r"^\*\*\d+\. ", m.value)]


def test_without_artifacts_says_which_command_to_run(app_in, tmp_path):
    at = app_in(tmp_path)
    assert not at.exception
    assert "has not been built yet" in at.warning[0].value
    assert any("make demo" in c.value and "dvc repro" in c.value for c in at.code)


def test_library_page_without_artifacts(app_in, tmp_path):
    at = app_in(tmp_path)
    at.switch_page("views/library.py").run()
    assert not at.exception and "has not been built yet" in at.warning[0].value


@pytest.mark.slow
def test_query_by_library_clip_gives_k_results_per_modality(app_in, project, built):
    at = app_in(project)
    assert not at.exception
    at.radio(key="source").set_value("Pick a library clip").run()
    clip = "generated-track-01--nature-1.mp4"
    at.selectbox(key="library_clip").set_value(clip).run()
    assert not at.exception
    titles = [s.value for s in at.subheader]
    assert {"Audio only", "Audio-visual", "Visual only"} <= set(titles)
    hits = _hits(at)
    assert len(hits) == 3 * 5  # default k = 5, three modalities
    assert sum(h.startswith("**1. generated\\-track\\-01\\-\\-nature\\-1\\.mp4**") for h in hits) == 3
    assert "share" in at.info[0].value or "same" in at.info[0].value
    # k from the sidebar reruns the search without decoding anything
    at.slider(key="k").set_value(3).run()
    assert len(_hits(at)) == 3 * 3


@pytest.mark.slow
def test_each_hit_says_where_it_matches_and_plays_from_there(app_in, project, built):
    """A re-upload of a video's last seconds as the query: the video is the same footage, matched
    at its end, and its player starts there."""
    reupload = next((project / "mylib").glob("reupload-*.mp4")).name
    video = reupload.replace("reupload-", "video-")
    at = app_in(project)
    at.radio(key="source").set_value("Pick a library clip").run()
    at.selectbox(key="library_clip").set_value(reupload).run()
    assert not at.exception
    escaped = video.replace("-", "\\-").replace(".", "\\.")
    rank = next(int(h[2]) for h in _hits(at) if escaped in h and h.startswith("**"))
    spans = [c.value for c in at.caption if "of the query at" in c.value]
    assert any(c.startswith("**same footage** · matches 0:00-0:06 of the query at 0:1") for c in spans), spans
    assert any(set(c.value.strip("`")) == {"─", "█"} and c.value.endswith("█`") for c in at.caption)
    assert not [v for v in at.get("video") if v.proto.autoplay]  # the query's player only: none of a hit's
    play = at.button(key=f"audio_visual-play-{rank}-open")
    assert re.fullmatch(r"▶ play from 0:[12]\d", play.label), play.label
    play.click().run()
    playing = [v.proto.start_time for v in at.get("video") if v.proto.autoplay]
    assert len(playing) == 1 and 10 <= playing[0] <= 22, playing  # the video's own player, at the match
    at.button(key=f"audio_visual-play-{rank}-close").click().run()
    assert not [v for v in at.get("video") if v.proto.autoplay]


@pytest.mark.slow
def test_bad_upload_shows_an_error_and_the_app_keeps_working(app_in, project, built):
    at = app_in(project)
    at.file_uploader(key="upload").set_value(("evil [x](y).mp4", b"definitely not a video", "video/mp4")).run()
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert message.startswith("Could not use **evil \\[x\\]\\(y\\)\\.mp4**: not a readable video")
    assert not _hits(at)
    at.radio(key="source").set_value("Pick a library clip").run()
    at.selectbox(key="library_clip").set_value("silent.mp4").run()
    assert not at.exception
    assert len(_hits(at)) == 10  # visual, and audio-visual fused on the picture alone: no sound
    assert any("no audio" in w.value for w in at.warning)


@pytest.mark.slow
def test_library_page_lists_status_metrics_and_losses(app_in, project, built):
    at = app_in(project)
    at.switch_page("views/library.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["failed files"] == "1" and metrics["missing audio"] == "1"
    assert "efficientnet-lite0" in " ".join(m.value for m in at.markdown)
    # a gallery: a card per clip with its thumbnail, name, length and labels; the failed one says why
    status = pd.read_csv(project / "data/index/status.csv", keep_default_na=False)
    cards = [m.value for m in at.markdown if m.value.startswith("**") and m.value.endswith("\\.mp4**")]
    assert len(cards) == len(status) and "**broken\\.mp4**" in cards
    assert len(at.get("imgs")) == int(((status["status"] == "ok") & (status["has_video"] == "True")).sum())
    captions = [c.value for c in at.caption]
    assert "0:04 · generated\\-track\\-01 / nature" in captions
    assert "0:03 · missing audio" in captions and ":red[not a readable video" in " ".join(captions)
    assert len(at.dataframe) == 1  # the evaluation metrics; the clips are cards
    # filters: state, then a name; then the table view of what is left
    at.multiselect(key="library_states").set_value(["failed", "missing audio"]).run()
    cards = [m.value for m in at.markdown if m.value.endswith("\\.mp4**")]
    assert cards == ["**broken\\.mp4**", "**silent\\.mp4**"]
    assert any(c.value == f"clips 1-2 of 2 (filtered from {len(status)})" for c in at.caption)
    at.text_input(key="library_filter").input("SIL").run()
    at.segmented_control(key="library_view").set_value("Table").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table.to_dict("records") == [{"clip": "silent.mp4", "state": "missing audio", "length": "0:03",
                                         "audio_label": "", "visual_label": "",
                                         "reason": "no audio stream: indexed for visual only"}]
    # find similar from a card: the search page, with that clip as the query
    at.segmented_control(key="library_view").set_value("Gallery").run()
    at.button(key="library-similar-silent.mp4").click().run()
    assert not at.exception and at.session_state["query"]["clip"] == "silent.mp4"
    assert at.title[0].value == "Find similar clips"


@pytest.mark.slow
def test_two_sessions_keep_their_own_results(app_in, project, built):
    first = app_in(project)
    second = AppTest.from_file(APP, default_timeout=120).run()  # same process, shared library
    clips = {first: "generated-track-01--nature-1.mp4", second: "generated-track-06--abstract-2.mp4"}
    for at in clips:
        at.radio(key="source").set_value("Pick a library clip").run()
    for at, clip in clips.items():
        at.selectbox(key="library_clip").set_value(clip).run()
    first.run()  # a rerun of the first session after the second one searched
    for at, clip in clips.items():
        escaped = clip.replace("-", "\\-").replace(".", "\\.")
        assert _hits(at)[0].startswith(f"**1. {escaped}**")
        assert at.session_state["query"]["name"] == clip


@pytest.mark.slow
def test_concurrent_queries_on_the_shared_library(project, built):
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from vidsim.search import Library

    lib = Library.load(project / "data/index", project / "data/models")
    paths = sorted((project / "data/demo/queries").glob("*.mp4"))[:2]
    alone = [lib.featurize(p) for p in paths]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lib.featurize, paths))
    for a, b in zip(alone, together):
        np.testing.assert_allclose(a.frames, b.frames, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(a.audio, b.audio)


@pytest.mark.slow
def test_weight_slider_method_and_more_like_this(app_in, project, built):
    at = app_in(project)
    at.radio(key="source").set_value("Pick a library clip").run()
    at.selectbox(key="library_clip").set_value("generated-track-01--nature-1.mp4").run()
    assert any(c.value == "late fusion · audio 40% · visual 60%" for c in at.caption)
    at.slider(key="audio_weight").set_value(1.0).run()
    assert not at.exception
    assert any(c.value == "late fusion · audio 100%" for c in at.caption)
    # more like this from the second audio hit: that clip becomes the query, and is its own first hit
    second = _hits(at)[1].split("**")[1].split(". ", 1)[1].replace("\\", "")
    at.button(key="audio-more-2").click().run()
    assert not at.exception
    assert at.session_state["query"]["name"] == second
    assert _hits(at)[0] == f"**1. {second.replace('-', chr(92) + '-').replace('.', chr(92) + '.')}**" \
        or _hits(at)[0].startswith(f"**1. {second.replace('-', chr(92) + '-').replace('.', chr(92) + '.')}**")
    # leaving the query out: it is no longer among the hits
    at.toggle(key="exclude_self").set_value(True).run()
    assert not any(second.replace("-", "\\-").replace(".", "\\.") + "**" in h for h in _hits(at))
    # the original's method: no weight slider, probabilities sum to one per column
    at.selectbox(key="method").set_value("original").run()
    assert not at.exception and not [s for s in at.slider if s.key == "audio_weight"]


@pytest.mark.slow
def test_text_box_searches_with_a_text_tower_and_says_why_not_without(app_in, tmp_path, monkeypatch):
    from tests.test_search_methods import TEXT, _text_library

    lib, root = _text_library(tmp_path)
    monkeypatch.setenv("VIDSIM_INDEX", str(root / "index"))
    monkeypatch.setenv("VIDSIM_MODELS", str(root / "models"))
    monkeypatch.setenv("VIDSIM_UNVERIFIED", "1")  # a library built by the test, without DVC
    at = app_in(tmp_path)
    assert not at.exception and not at.text_input(key="text").disabled
    at.text_input(key="text").set_value(TEXT).run()
    assert not at.exception
    assert "Text" in [s.value for s in at.subheader]
    first = lib.index.clips["clip"].iloc[2].replace("-", "\\-").replace(".", "\\.")
    assert _hits(at)[0].startswith(f"**1. {first}**")
    # a clip and a text: the text joins the audio-visual fusion, with its own weight
    at.radio(key="source").set_value("Pick a library clip").run()
    at.selectbox(key="library_clip").set_value(lib.index.clips["clip"].iloc[0]).run()
    assert not at.exception and at.slider(key="text_weight").value == 0.5
    assert any(c.value.startswith("late fusion") and "text" in c.value for c in at.caption)


@pytest.mark.slow
def test_text_box_is_disabled_with_an_image_only_encoder(app_in, project, built):
    at = app_in(project)
    box = at.text_input(key="text")
    assert box.disabled and "image-only" in box.help


def test_a_running_app_loads_the_rebuilt_library(tmp_path, monkeypatch):
    """After `dvc repro` rewrites the index, the next rerun serves the new library (the old one
    is dropped from the cache), and reruns in between reuse the loaded one."""
    import sys

    sys.path.insert(0, str(ROOT / "streamlit_app"))
    import common

    index, models = tmp_path / "index", tmp_path / "models"
    index.mkdir()
    models.mkdir()
    (index / "manifest.json").write_text("{}")
    monkeypatch.setenv("VIDSIM_INDEX", str(index))
    monkeypatch.setenv("VIDSIM_MODELS", str(models))
    opened, warmed = [], []

    class Loaded:  # what Library.open returns, as far as the loader uses it
        def warm_up(self):
            warmed.append(self)

    monkeypatch.setattr(common.Library, "open", classmethod(lambda cls, *args, **kw: opened.append(args) or Loaded()))
    common._load_library.clear()
    first = common.load_library()
    assert common.load_library() is first and len(opened) == 1
    assert warmed == [first]  # a loaded library starts mapping its arrays once, in the background
    (index / "manifest.json").write_text('{"rebuilt": true}')
    second = common.load_library()
    assert second is not first and len(opened) == 2
    (models / "audio.safetensors").write_bytes(b"new model")
    assert common.load_library() is not second and len(opened) == 3
    common._load_library.clear()


def test_latent_plot_tells_labels_apart_by_colour_and_shape_beside_the_axes():
    """Audio-visual: a colour per audio label, a marker shape per visual label, the legend to the
    right of the plot (it covered the x-axis title); too many labels to tell apart: one trace."""
    import sys

    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(ROOT / "streamlit_app"))
    from components.latent import PALETTE, latent_figure

    audio, visual = ["a", "b", "c"] * 4, ["v", "w"] * 6
    points = pd.DataFrame({"clip": [f"{i}.mp4" for i in range(12)], "path": "", "audio_label": audio,
                           "visual_label": visual, "z0": np.arange(12.0), "z1": np.arange(12.0) % 5})
    fig, _ = latent_figure(points, "audio_visual")
    style = {t.name: (t.marker.color, t.marker.symbol) for t in fig.data}
    assert len(style) == 6 and len({c for c, _ in style.values()}) == 3 and len({s for _, s in style.values()}) == 2
    assert style["a · v"][0] == style["a · w"][0] != style["b · v"][0]
    assert style["a · v"][1] == style["b · v"][1] != style["a · w"][1]
    assert fig.layout.legend.x > 1 and fig.layout.legend.title.text == "audio · visual"
    many = pd.concat([points] * 3, ignore_index=True).assign(audio_label=[f"s{i}" for i in range(36)])
    assert len(PALETTE) < 36 and len(latent_figure(many, "audio")[0].data) == 1


def test_the_disagreement_line_names_each_search_once():
    import sys

    from vidsim.search import Hit, QueryResult

    sys.path.insert(0, str(ROOT / "streamlit_app"))
    from components.results import disagreement

    def result(modality: str, clips: list[str]) -> QueryResult:
        hits = [Hit(rank=i + 1, clip=c, path="", probability=0.5, distance=None, scores={})
                for i, c in enumerate(clips)]
        return QueryResult(modality, "vidsim", hits, lambda: None)

    line = disagreement(result("audio", ["a.mp4", "b.mp4", "c.mp4"]),
                        result("audio_visual", ["a.mp4", "d.mp4", "c.mp4"]))
    assert line == ("Audio only and audio-visual share 2 of 3 hits (★). Only the audio search found b\\.mp4. "
                    "Only the audio-visual search found d\\.mp4.")
    assert disagreement(result("audio", ["a.mp4", "b.mp4"]), result("visual", ["b.mp4", "a.mp4"])) == \
        "Audio only and visual only return the same 2 clips."


def test_the_timeline_places_the_match_in_the_clip_in_one_short_line():
    import sys

    from vidsim.excerpts import Match

    sys.path.insert(0, str(ROOT / "streamlit_app"))
    from components.results import timeline

    bar = timeline(Match(0.0, 122.0, 18.5, 0.5, 1.0), 150.0).strip("`")
    assert len(bar) == 20 and bar == "─" * 16 + "███" + "─"  # 122-140.5 s of 150: cells 16.3-18.7
    assert timeline(Match(0.0, 0.0, 4.0, 0.5, 1.0), None).strip("`") == "█" * 20  # no length: the span's end
    assert timeline(Match(0.0, 149.6, 0.4, 0.5, 1.0), 150.0).strip("`").endswith("─█")  # at least one cell
