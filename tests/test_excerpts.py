"""Where a hit matches: offsets voted by the query's seconds, spans, and the same-footage flag."""

from __future__ import annotations

import numpy as np
import pytest

from vidsim import excerpts
from vidsim.excerpts import Match, align, combine, same_footage, similarities


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _video(seconds: int, seed: int = 0, dim: int = 64) -> np.ndarray:
    """Per-second rows like a video's: each second close to the one before (scenes last)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((seconds, dim))
    out = np.empty_like(noise)
    out[0] = noise[0]
    for t in range(1, seconds):
        out[t] = 0.6 * out[t - 1] + 0.4 * noise[t]
    return _unit(out)


def _recorded(rows: np.ndarray, seed: int = 1, noise: float = 0.04) -> np.ndarray:
    """The same seconds seen through another encoding: a little noise on every row."""
    rng = np.random.default_rng(seed)
    return _unit(rows + noise * rng.standard_normal(rows.shape))


def test_an_excerpt_is_found_where_it_was_cut_from():
    video = _video(150)
    m = align(similarities(_recorded(video[37:52]), video))
    assert m.query_start == 0 and m.seconds == 15 and m.coverage == 1.0
    assert m.clip_start == pytest.approx(37, abs=0.5)
    assert m.score > 0.8 and same_footage(m, 0.6)


def test_an_excerpt_between_seconds_lands_between_them():
    """Sampled half a second later than the video's own seconds: each query second is the mean
    of two video seconds, and the offset comes out between them."""
    video = _video(120, seed=3)
    half = _unit(video[60:80] + video[61:81])
    m = align(similarities(half, video))
    assert 60.0 <= m.clip_start <= 61.0 and m.clip_start != 60.0


def test_a_clip_inside_a_longer_query_is_found_too():
    clip = _video(20, seed=4)
    rng = np.random.default_rng(5)
    query = np.concatenate([_unit(rng.standard_normal((5, 64))), _recorded(clip), _unit(rng.standard_normal((4, 64)))])
    m = align(similarities(query, clip))
    assert (m.query_start, m.clip_start, m.seconds) == (5.0, 0.0, 20.0)
    assert m.coverage == 1.0 and same_footage(m, 0.6)  # covers all of the shorter one: the clip


def test_other_footage_matches_nowhere_in_particular():
    video = _video(150)
    other = _video(15, seed=9)
    m = align(similarities(other, video))
    assert m.score < 0.3 and not same_footage(m, 0.6)
    part = np.concatenate([_recorded(video[10:18]), other[:7]])  # half of it is the video's
    m = align(similarities(part, video))
    assert (m.query_start, m.seconds) == (0.0, 8.0) and m.clip_start == pytest.approx(10, abs=0.5)
    assert m.coverage == pytest.approx(8 / 15) and not same_footage(m, 0.3)


def test_modalities_vote_together_and_crop_to_common_seconds():
    video, sound = _video(60, seed=1), _video(61, seed=2)  # one more audio window than frames
    sims = {"visual": similarities(_recorded(video[20:30]), video),
            "audio": similarities(_recorded(sound[20:31]), sound)}
    both = combine(sims, {"audio": 0.4, "visual": 0.6})
    assert both.shape == (10, 60)
    np.testing.assert_allclose(both, 0.4 * sims["audio"][:10, :60] + 0.6 * sims["visual"], rtol=1e-6)
    assert align(both).clip_start == pytest.approx(20, abs=0.5)
    assert combine(sims, {"audio": 0.0, "visual": 0.0}) is None
    np.testing.assert_allclose(combine(sims, {"visual": 2.0}), sims["visual"])


def test_no_seconds_no_match_and_spans_in_seconds():
    assert align(np.zeros((0, 5))) is None and align(np.zeros((5, 0))) is None
    assert not same_footage(None, 0.0)
    video = _video(40)
    m = align(similarities(_recorded(video[10:20]), video), step=0.5)  # two rows a second
    assert m.seconds == 5.0 and m.clip_start == pytest.approx(5.0, abs=0.25)
    assert Match(1.0, 2.0, 3.0, 0.41234, 1.0, 0.9).to_dict() == {
        "query_start": 1.0, "clip_start": 2.0, "seconds": 3.0, "score": 0.412, "coverage": 1.0, "similarity": 0.9}
    assert excerpts.BAND == 1


def test_spans_read_as_clock_times():
    assert [excerpts.clock(s) for s in (0, 7.4, 83, 599.6, 3725)] == ["0:00", "0:07", "1:23", "10:00", "1:02:05"]
    assert Match(12.0, 83.0, 15.0, 0.9, 1.0).describe() == "matches 0:12-0:27 of the query at 1:23-1:38"


def test_hits_aligned_together_match_each_aligned_alone():
    video, clip = _video(90, seed=5), _video(12, seed=6)
    query = _recorded(video[30:42])
    sims = [similarities(query, video), similarities(query, clip), np.zeros((12, 0)),
            similarities(query[:11], video)]  # a hit with fewer query seconds (one modality missing)
    together = excerpts.align_many(sims)
    assert together[2] is None
    for got, one in zip(together, sims):
        assert got == align(one)


def test_a_still_picture_is_the_same_footage_by_its_similarity_alone():
    """Every second of a still alike: the aligned seconds do not stand out above the others, but
    match nearly exactly; a merely similar still does not."""
    still = _unit(np.tile(np.random.default_rng(7).standard_normal(64), (20, 1)))
    copy = align(similarities(_recorded(still[:8], noise=0.01), still))
    assert copy.score < 0.1 and copy.similarity > 0.95 and same_footage(copy, 0.3)
    alike = _unit(still[:8] + 0.8 * _unit(np.random.default_rng(8).standard_normal((8, 64))))
    other = align(similarities(alike, still))
    assert other.similarity < 0.9 and not same_footage(other, 0.3)
