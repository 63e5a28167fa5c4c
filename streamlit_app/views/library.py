"""Library page: every clip as a browsable gallery (or a table) with a search box and filters, the
encoder, the evaluation figures and the training-loss curves."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st
from common import artifacts_stamp, folder, library_or_stop, load_library, plain

from vidsim.catalog import STATES, ClipFilter, duration_text, labels_of, page, page_count, with_states
from vidsim.evaluation import metrics_table
from vidsim.modalities import TITLES

GALLERY_PAGE = 24  # cards per page (6 rows of 4): only these load a thumbnail
TABLE_PAGE = 50  # rows per page of the table
CARDS_PER_ROW = 4


@st.cache_resource(max_entries=1, show_spinner=False)
def _clips(stamp: tuple) -> pd.DataFrame:
    """The status table with each clip's state, once per built library (shared, not copied: a
    million rows)."""
    return with_states(load_library().status())


lib = library_or_stop()
enc = lib.encoder_info
table = _clips(artifacts_stamp())

st.title("Library")
counts = table["state"].value_counts() if len(table) else pd.Series(dtype=int)
cols = st.columns(4)
cols[0].metric("clips indexed", f"{len(lib.index.clips):,}")
cols[1].metric("failed files", int(counts.get("failed", 0)))
cols[2].metric("missing audio", int(counts.get("missing audio", 0)))
cols[3].metric("missing video", int(counts.get("missing video", 0)))

st.markdown(f"**Visual encoder:** {enc.model} · weights: {plain(enc.weights)} · {enc.dim}-d · {enc.precision} · "
            f"text queries: {'yes' if enc.has_text else 'no (image-only weights)'}")
st.markdown(f"**Search method:** `{lib.default_method}` · default k = {lib.default_k} · late-fusion weights: "
            + ", ".join(f"{m} {w:.2f}" for m, w in lib.default_weights.items()))

st.subheader("Clips")
if not len(table):
    st.info("No clip status: run `dvc repro` (or `vidsim index DIR`).")
else:
    audio_labels, visual_labels = labels_of(table, "audio_label"), labels_of(table, "visual_label")
    f_text, f_state, f_audio, f_visual = st.columns([3, 2, 2, 2])
    chosen = ClipFilter(
        text=f_text.text_input("Search", key="library_filter", placeholder="part of a file name"),
        states=tuple(f_state.multiselect("State", STATES, key="library_states", placeholder="any")),
        audio_labels=tuple(f_audio.multiselect("Audio label", audio_labels, key="library_audio",
                                               placeholder="any" if audio_labels else "no labels",
                                               disabled=not audio_labels)),
        visual_labels=tuple(f_visual.multiselect("Visual label", visual_labels, key="library_visual",
                                                 placeholder="any" if visual_labels else "no labels",
                                                 disabled=not visual_labels)))
    shown = chosen.apply(table)
    view = st.segmented_control("View", ["Gallery", "Table"], default="Gallery", key="library_view",
                                label_visibility="collapsed") or "Gallery"
    size = GALLERY_PAGE if view == "Gallery" else TABLE_PAGE
    pages = page_count(len(shown), size)
    left, right = st.columns([1, 4], vertical_alignment="bottom")
    # no key: a new filter (another page count) starts again at page 1
    number = left.number_input(f"Page (of {pages:,})", 1, pages, 1) if pages > 1 else 1
    rows, _ = page(shown, number, size)
    first = (number - 1) * size
    right.caption(f"clips {first + 1:,}-{first + len(rows):,} of {len(shown):,}" +
                  (f" (filtered from {len(table):,})" if len(shown) < len(table) else "") if len(rows)
                  else "No clip matches these filters.")
    if view == "Gallery":
        for start in range(0, len(rows), CARDS_PER_ROW):
            for col, row in zip(st.columns(CARDS_PER_ROW), rows.iloc[start:start + CARDS_PER_ROW].to_dict("records")):
                with col.container(border=True):
                    thumb = lib.thumbnail(row["clip"]) if row["state"] != "failed" else None
                    if thumb is not None:
                        st.image(str(thumb), width="stretch")
                    st.markdown(f"**{plain(row['clip'])}**")
                    labels = " / ".join(plain(str(row.get(c) or "")) for c in ("audio_label", "visual_label")
                                        if row.get(c))
                    length = duration_text(row.get("duration"))
                    st.caption(" · ".join(p for p in (length if length != "–" else "", labels,
                                                      row["state"] if row["state"] != "indexed" else "") if p))
                    if row["state"] == "failed":
                        st.caption(f":red[{plain(str(row.get('reason') or 'unreadable'))}]")
                    elif st.button("find similar clips", key=f"library-similar-{row['clip']}"):
                        st.session_state["query"] = {"name": row["clip"], "video": row["path"], "clip": row["clip"]}
                        st.switch_page("views/search.py")
    else:
        rows = rows.assign(length=[duration_text(d) for d in rows["duration"]])
        st.dataframe(
            rows[["clip", "state", "length", "audio_label", "visual_label", "reason"]], hide_index=True,
            width="stretch", height=38 + 35 * len(rows),
            column_config={"clip": st.column_config.TextColumn("clip", width="medium"),
                           "length": st.column_config.TextColumn("length", width="small"),
                           "reason": st.column_config.TextColumn("reason", width="large")})

st.subheader("Evaluation (last `dvc repro`)")
held = metrics_table(folder("METRICS", "metrics"), "queries")
columns = ["method", "modality", "recall@1", "recall@5", "mAP", "mAP@100", "brier", "queries"]
if len(held):
    held["modality"] = held["modality"].map(TITLES)
    st.dataframe(held[[c for c in columns if c in held]], hide_index=True, width="stretch")
    st.caption("Held-out query clips (other excerpts, other photos) against the library: a hit is "
               "relevant when it shares the audio label (audio), the visual label (visual) or both "
               "(audio-visual). `vidsim` is the default method, `original` the study's configuration, "
               "`raw` plain k-NN on the features. Brier: lower is better.")
else:
    st.info("No held-out figures: params.yaml names no labelled held-out query folder (`evaluation`), "
            "or `dvc repro` has not run.")

st.subheader("Training loss")
loss_path = folder("METRICS", "metrics") / "train_loss.csv"
if loss_path.exists():
    loss = pd.read_csv(loss_path).melt(id_vars="epoch", var_name="modality", value_name="loss")
    fig = px.line(loss, x="epoch", y="loss", color="modality", log_y=True)
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    st.plotly_chart(fig, width="stretch")
else:
    st.info("No loss curves yet: run `dvc repro`.")
