"""One result column: the top-k hits of a modality with probability, distance, thumbnail, player."""

from __future__ import annotations

import streamlit as st
from common import MODALITY_TITLES, plain

from vidsim.search import Library, QueryResult


def results_column(lib: Library, result: QueryResult, shared: set[str], key: str) -> None:
    st.subheader(MODALITY_TITLES[result.modality])
    for hit in result.hits:
        with st.container(border=True):
            thumb, text = st.columns([1, 2])
            path = lib.thumbnail(hit.clip)
            if path is not None:
                thumb.image(str(path), width="stretch")
            star = " ★" if hit.clip in shared else ""
            text.markdown(f"**{hit.rank}. {plain(hit.clip)}**{star}")
            text.progress(min(max(hit.probability, 0.0), 1.0),
                          text=f"probability {100 * hit.probability:.1f}% · distance {hit.distance:.3f}")
            if text.toggle("▶ play", key=f"{key}-play-{hit.rank}"):
                st.video(hit.path)


def disagreement(a: QueryResult, b: QueryResult) -> str:
    """One line on where two modalities' hit lists differ."""
    ta, tb = MODALITY_TITLES[a.modality], MODALITY_TITLES[b.modality].lower()
    ca, cb = [h.clip for h in a.hits], [h.clip for h in b.hits]
    both = [c for c in ca if c in cb]
    if len(both) == len(ca) == len(cb):
        return f"{ta} and {tb} return the same {len(ca)} clips."
    line = f"{ta} and {tb} share {len(both)} of {len(ca)} hits (★)."
    for title, mine, other in ((ta.lower(), ca, cb), (tb, cb, ca)):
        only = [plain(c) for c in mine if c not in other]
        if only:
            more = f" and {len(only) - 2} more" if len(only) > 2 else ""
            line += f" Only {title}: {', '.join(only[:2])}{more}."
    return line
