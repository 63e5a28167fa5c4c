"""The library page's browsing: states, filters, pages and durations on a hand-made status table."""

from __future__ import annotations

import pandas as pd

from vidsim.catalog import ClipFilter, duration_text, labels_of, page, with_states


def _status() -> pd.DataFrame:
    return pd.DataFrame({
        "clip": ["Song_A.mp4", "song-b.mkv", "silent.mp4", "radio.mp4", "broken.mp4"],
        "status": ["ok", "ok", "ok", "ok", "error"],
        "reason": ["", "", "no audio stream", "no video stream", "not a readable video"],
        "has_audio": [True, True, False, True, False],
        "has_video": [True, True, True, False, False],
        "duration": [12.005, 3725.4, float("nan"), 59.6, float("nan")],
        "audio_label": ["rock", "jazz", "", "rock", ""],
        "visual_label": ["sea", "sea", "city", "", ""],
    })


def test_states_name_what_each_clip_is_indexed_for():
    assert with_states(_status())["state"].tolist() == [
        "indexed", "indexed", "missing audio", "missing video", "failed"]
    assert "state" in with_states(pd.DataFrame()).columns


def test_filters_combine_and_keep_library_order():
    table = with_states(_status())
    assert ClipFilter().apply(table)["clip"].tolist() == table["clip"].tolist()
    assert ClipFilter(text="SONG").apply(table)["clip"].tolist() == ["Song_A.mp4", "song-b.mkv"]
    assert ClipFilter(text="song", audio_labels=("rock",)).apply(table)["clip"].tolist() == ["Song_A.mp4"]
    assert ClipFilter(states=("failed", "missing audio")).apply(table)["clip"].tolist() == ["silent.mp4", "broken.mp4"]
    assert ClipFilter(visual_labels=("sea",), states=("failed",)).apply(table).empty
    assert ClipFilter(text="a.mp4[").apply(table).empty  # plain text, not a pattern


def test_labels_pages_and_durations():
    table = with_states(_status())
    assert labels_of(table, "audio_label") == ["jazz", "rock"] and labels_of(table, "nothing") == []
    rows, pages = page(table, 2, 2)
    assert pages == 3 and rows["clip"].tolist() == ["silent.mp4", "radio.mp4"]
    assert page(table, 9, 2)[0]["clip"].tolist() == ["broken.mp4"]  # past the end: the last page
    assert page(table.iloc[:0], 1, 2)[1] == 1
    assert [duration_text(d) for d in (12.005, 59.6, 3725.4, float("nan"), None, 0.4)] == [
        "0:12", "1:00", "1:02:05", "–", "–", "0:00"]
