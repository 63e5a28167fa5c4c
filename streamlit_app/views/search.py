"""Search page: a query clip (upload or library), results side by side, latent-space views."""

from __future__ import annotations

import streamlit as st
from common import MODALITY_TITLES, library_or_stop, plain
from components.latent import latent_figure
from components.query import QueryFailed, featurize_upload, search_all
from components.results import disagreement, results_column

from vidsim.scores import SCORES

VIDEO_TYPES = ["mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg"]

lib = library_or_stop()
enc = lib.encoder_info

st.title("Find similar clips")
st.caption(f"{len(lib.index.clips)} clips indexed · visual encoder **{enc.model}** "
           f"({plain(enc.weights)}, {enc.dim}-d)"
           + ("" if enc.has_text else " · text queries need a CLIP text tower (not available)"))

with st.sidebar:
    n_clips = len(lib.index.clips)
    k = st.slider("Hits per modality (k)", 1, min(20, n_clips), min(lib.default_k, n_clips), key="k")
    score = st.selectbox("Probability of similarity", SCORES, index=SCORES.index(lib.default_score),
                         format_func=lambda s: {"kernel": "kernel (calibrated, default)",
                                                "softmax2": "softmax(1 - softmax(d)) (original)"}[s],
                         key="score")

source = st.radio("Query", ["Upload a clip", "Pick a library clip"], horizontal=True,
                  label_visibility="collapsed", key="source")
if source == "Upload a clip":
    upload = st.file_uploader("Upload a video clip", type=VIDEO_TYPES,
                              help="The clip is decoded in a private temporary folder and deleted afterwards.",
                              key="upload")
    if upload is not None and st.session_state.get("query_id") != upload.file_id:
        try:
            feats = featurize_upload(lib, upload.getvalue(), upload.name)
        except QueryFailed as exc:
            st.session_state.pop("query", None)
            st.error(str(exc))
        else:
            st.session_state["query"] = {"name": upload.name, "video": upload.getvalue(),
                                         "results": search_all(lib, feats, k, score), "feats": feats}
        st.session_state["query_id"] = upload.file_id
else:
    clip = st.selectbox("Library clip", lib.index.clips["clip"].tolist(), index=None,
                        placeholder="Choose a clip of the library", key="library_clip")
    if clip and st.session_state.get("query_id") != f"library:{clip}":
        results = {}
        for m in lib.modalities:
            try:
                results[m] = lib.query_clip(clip, m, k, score)
            except KeyError:
                results[m] = f"{clip} has no {m.replace('_', '-')} features"
        st.session_state["query"] = {"name": clip, "video": lib.clip_info(clip)["path"],
                                     "results": results, "clip": clip}
        st.session_state["query_id"] = f"library:{clip}"

query = st.session_state.get("query")
if query:
    # k or the score changed since the search: redo the cheap part (no decoding).
    first = next((r for r in query["results"].values() if not isinstance(r, str)), None)
    if first is not None and (len(first.hits) != min(k, len(lib.index.clips))
                              or query.get("score") != score):
        if "feats" in query:
            query["results"] = search_all(lib, query["feats"], k, score)
        else:
            query["results"] = {m: (lib.query_clip(query["clip"], m, k, score)
                                    if not isinstance(r, str) else r)
                                for m, r in query["results"].items()}
    query["score"] = score

    st.markdown(f"#### Query: {plain(query['name'])}")
    left, _ = st.columns([2, 3])
    left.video(query["video"])
    results = query["results"]
    shown = [m for m in ("audio", "audio_visual", "visual") if m in results]
    good = {m: r for m, r in results.items() if not isinstance(r, str)}
    shared = set()
    if "audio" in good and "audio_visual" in good:
        shared = {h.clip for h in good["audio"].hits} & {h.clip for h in good["audio_visual"].hits}
        st.info(disagreement(good["audio"], good["audio_visual"]))
    for m, col in zip(shown, st.columns(len(shown))):
        with col:
            if m in good:
                results_column(lib, good[m], shared, key=m)
            else:
                st.subheader(MODALITY_TITLES[m])
                st.warning(plain(results[m]))

st.divider()
st.markdown("### Latent space")
tabs = st.tabs([MODALITY_TITLES[m] for m in lib.modalities])
for m, tab in zip(lib.modalities, tabs):
    with tab:
        r = query["results"].get(m) if query else None
        has_query = r is not None and not isinstance(r, str)
        fig, caption = latent_figure(
            lib.points(m), m, query=r.latent if has_query else None,
            neighbours=[h.clip for h in r.hits] if has_query else None,
            query_name=query["name"] if query else "query")
        st.caption(caption + " · click a point to see that clip")
        event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=f"latent-{m}",
                                width="stretch")
        picked = [p.get("customdata") for p in event.selection.get("points", [])] if event else []
        picked = [c for c in picked if c in set(lib.index.clips["clip"])]
        if picked:
            row = lib.clip_info(picked[0])
            st.markdown(f"**{plain(picked[0])}** · audio label: {plain(row['audio_label'] or '-')} · "
                        f"visual label: {plain(row['visual_label'] or '-')}")
            st.video(row["path"])
