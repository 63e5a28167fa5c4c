"""Library page: every clip with its status, the encoder, evaluation metrics and loss curves."""

from __future__ import annotations

import json

import pandas as pd
import plotly.express as px
import streamlit as st
from common import METRICS_DIR, MODALITY_TITLES, library_or_stop, plain

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

st.markdown(f"**Visual encoder:** {enc.model} · weights: {plain(enc.weights)} · {enc.dim}-d · "
            f"text queries: {'yes' if enc.has_text else 'no (image-only weights)'}")
st.markdown(f"**Probability of similarity:** `{lib.default_score}` · default k = {lib.default_k}")

st.subheader("Clips")
if len(status):
    table = status.copy()
    table["state"] = [
        "failed" if s == "error" else ("missing audio" if not a else "missing video" if not v else "indexed")
        for s, a, v in zip(table["status"], table["has_audio"], table["has_video"])]
    st.dataframe(table[["clip", "state", "reason", "duration", "audio_label", "visual_label"]],
                 hide_index=True, width="stretch")

st.subheader("Evaluation (last `dvc repro`)")
eval_path = METRICS_DIR / "eval.json"
metrics = json.loads(eval_path.read_text()) if eval_path.exists() else {}
if metrics:
    frame = pd.DataFrame(metrics).T.rename(index=MODALITY_TITLES)
    st.dataframe(frame[[c for c in ("recall@1", "recall@5", "mAP", "brier_kernel", "brier_softmax2")
                        if c in frame]], width="stretch")
    st.caption("Leave-one-out over the library: a hit is relevant when it shares the audio label "
               "(audio), the visual label (visual) or both (audio-visual). Brier: lower is better.")
else:
    st.info("No evaluation metrics: the library has no labels.csv, or `dvc repro` has not run.")

st.subheader("Training loss")
loss_path = METRICS_DIR / "train_loss.csv"
if loss_path.exists():
    loss = pd.read_csv(loss_path).melt(id_vars="epoch", var_name="modality", value_name="loss")
    fig = px.line(loss, x="epoch", y="loss", color="modality", log_y=True)
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    st.plotly_chart(fig, width="stretch")
else:
    st.info("No loss curves yet: run `dvc repro`.")
