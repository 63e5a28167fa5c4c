"""Library page: every clip with its status, the encoder, evaluation metrics and loss curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st
from common import folder, library_or_stop, plain

from vidsim.evaluation import metrics_table
from vidsim.modalities import TITLES

ROWS_SHOWN = 5000  # clips listed at once (larger libraries get a search box)

lib = library_or_stop()
enc = lib.encoder_info
status = lib.status()

st.title("Library")
ok = status[status["status"] == "ok"] if len(status) else status
cols = st.columns(4)
cols[0].metric("clips indexed", len(lib.index.clips))
cols[1].metric("failed files", int((status["status"] == "error").sum()) if len(status) else 0)
cols[2].metric("missing audio", int((~ok["has_audio"]).sum()) if len(ok) else 0)
cols[3].metric("missing video", int((~ok["has_video"]).sum()) if len(ok) else 0)

st.markdown(f"**Visual encoder:** {enc.model} · weights: {plain(enc.weights)} · {enc.dim}-d · {enc.precision} · "
            f"text queries: {'yes' if enc.has_text else 'no (image-only weights)'}")
st.markdown(f"**Search method:** `{lib.default_method}` · default k = {lib.default_k} · late-fusion weights: "
            + ", ".join(f"{m} {w:.2f}" for m, w in lib.default_weights.items()))

st.subheader("Clips")
if len(status):
    table = status
    if len(table) > ROWS_SHOWN:  # a million rows would stall the browser: search, then show a page
        find = st.text_input("Find clips", key="library_filter", placeholder="part of a file name")
        if find.strip():
            table = table[table["clip"].str.contains(find.strip(), case=False, regex=False)]
        st.caption(f"{min(len(table), ROWS_SHOWN):,} of {len(table):,} clips shown")
        table = table.head(ROWS_SHOWN)
    table = table.assign(state=np.select(
        [table["status"] == "error", ~table["has_audio"], ~table["has_video"]],
        ["failed", "missing audio", "missing video"], "indexed"))
    st.dataframe(table[["clip", "state", "reason", "duration", "audio_label", "visual_label"]],
                 hide_index=True, width="stretch")

st.subheader("Evaluation (last `dvc repro`)")
table = metrics_table(folder("METRICS", "metrics"))
if len(table):
    table["modality"] = table["modality"].map(TITLES)
    st.dataframe(table[[c for c in ("method", "modality", "recall@1", "recall@5", "mAP", "mAP@100", "brier", "queries")
                        if c in table]], hide_index=True, width="stretch")
    st.caption("Held-out query clips (other excerpts, other photos) against the library: a hit is "
               "relevant when it shares the audio label (audio), the visual label (visual) or both "
               "(audio-visual). `vidsim` is the default method, `original` the study's configuration, "
               "`raw` plain k-NN on the features. Brier: lower is better.")
else:
    st.info("No evaluation metrics: no labelled query folder (`library.queries`), or `dvc repro` has not run.")

st.subheader("Training loss")
loss_path = folder("METRICS", "metrics") / "train_loss.csv"
if loss_path.exists():
    loss = pd.read_csv(loss_path).melt(id_vars="epoch", var_name="modality", value_name="loss")
    fig = px.line(loss, x="epoch", y="loss", color="modality", log_y=True)
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    st.plotly_chart(fig, width="stretch")
else:
    st.info("No loss curves yet: run `dvc repro`.")
