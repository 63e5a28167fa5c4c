"""One result column: the top-k hits of a modality with probability, where each matches the query,
thumbnail, player (from the match), more like this."""

from __future__ import annotations

import streamlit as st
from common import plain, show_video

from vidsim.excerpts import Match
from vidsim.modalities import TITLES
from vidsim.search import Library, QueryResult

SCORE_HELP = {
    "vidsim": "Probability of similarity: the chance that a hit shares the query's label, fitted on "
              "the library's own labels (70 % means about 7 hits in 10 at that score do). "
              "Audio-visual multiplies the two (both must match). Distances of different columns "
              "live in different spaces and are not comparable; the probabilities are.",
    "original": "Probability of similarity (the original's): softmax(1 - softmax(d)) over the k hits; "
                "it sums to 1 over the hits, so it ranks them but says little about how close they are.",
    "raw": "Probability of similarity: the chance that a hit shares the query's label, fitted on the "
           "library's own labels. Distances are Euclidean over standardised features.",
}


def results_column(lib: Library, result: QueryResult, shared: set[str], key: str) -> None:
    st.subheader(TITLES[result.modality])
    if result.weights:
        st.caption("late fusion · " + " · ".join(f"{m} {w:.0%}" for m, w in result.weights.items()))
    for hit in result.hits:
        with st.container(border=True):
            star = " ★" if hit.clip in shared else ""
            st.markdown(f"**{hit.rank}. {plain(hit.clip)}**{star}")  # the card's width: names rarely wrap
            thumb, text = st.columns([2, 3])
            path = lib.thumbnail(hit.clip)
            if path is not None:
                thumb.image(str(path), width="stretch")
            detail = f"distance {hit.distance:.3f}" if hit.distance is not None else hit.score_text()
            text.progress(min(max(hit.probability, 0.0), 1.0),
                          text=f"probability {100 * hit.probability:.1f}% · {detail}")
            start = 0.0
            if hit.match is not None and hit.match.seconds > 0:
                start = hit.match.clip_start
                text.caption(("**same footage** · " if hit.same_footage else "") + hit.match.describe())
                text.caption(timeline(hit.match, lib.clip_info(hit.clip).get("duration")))
            actions(hit.clip, hit.path, start, f"{key}-play-{hit.rank}", f"{key}-more-{hit.rank}")


@st.fragment
def actions(clip: str, path: str, start: float, play_key: str, more_key: str) -> None:
    """A hit's buttons: play (the player opens in the card and plays from `start`, the match; only
    this card reruns, not the page) and more like this (the hit becomes the query)."""
    opened = f"{clip}@{start:.1f}"  # another query's hit in this slot starts closed

    def toggle() -> None:  # a callback: the (card's) rerun that follows already sees it
        st.session_state[play_key] = None if st.session_state.get(play_key) == opened else opened

    playing = st.session_state.get(play_key) == opened
    play, more = st.columns(2)
    play.button("■ close the player" if playing else "▶ play" + (f" from {clock(start)}" if start >= 1 else ""),
                key=f"{play_key}-{'close' if playing else 'open'}", on_click=toggle, width="stretch",
                help=None if playing or start < 1 else "from the start of the match")
    if more.button("more like this", key=more_key, width="stretch"):
        st.session_state["query"] = {"name": clip, "video": path, "clip": clip}
        st.rerun()  # the whole page: a new query
    if playing:
        show_video(path, start=start, autoplay=True)


def clock(seconds: float) -> str:
    """m:ss, as the match lines write times."""
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def timeline(match: Match, duration: float | None, cells: int = 20) -> str:
    """Where in the clip the matched seconds lie, as a bar of `cells` (the clip's length; 30
    wrapped onto a second line in a result card's text column at 1500 px)."""
    total = float(duration) if duration and duration == duration and duration > 0 else \
        match.clip_start + match.seconds
    lo = int(cells * match.clip_start / total)
    hi = max(lo + 1, int(round(cells * min(match.clip_start + match.seconds, total) / total)))
    return "`" + "─" * lo + "█" * (min(hi, cells) - lo) + "─" * (cells - min(hi, cells)) + "`"


def disagreement(a: QueryResult, b: QueryResult) -> str:
    """One line on where two modalities' hit lists differ."""
    ta, tb = TITLES[a.modality], TITLES[b.modality].lower()
    ca, cb = [h.clip for h in a.hits], [h.clip for h in b.hits]
    both = [c for c in ca if c in cb]
    if len(both) == len(ca) == len(cb):
        return f"{ta} and {tb} return the same {len(ca)} clips."
    line = f"{ta} and {tb} share {len(both)} of {len(ca)} hits (★)."
    for result, mine, other in ((a, ca, cb), (b, cb, ca)):
        only = [plain(c) for c in mine if c not in other]
        if only:
            more = f" and {len(only) - 2} more" if len(only) > 2 else ""
            line += f" Only the {result.modality.replace('_', '-')} search found {', '.join(only[:2])}{more}."
    return line
