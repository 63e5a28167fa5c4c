"""Search page: a query clip (upload or library), results side by side, latent-space views."""

from __future__ import annotations

import hashlib

import streamlit as st
from common import library_or_stop, plain, show_video
from components.latent import latent_figure
from components.query import QueryFailed, featurize_upload
from components.results import SCORE_HELP, disagreement, results_column

from vidsim.integrity import IntegrityError
from vidsim.methods import DESCRIPTIONS
from vidsim.modalities import TITLES

VIDEO_TYPES = ["mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg"]
PICKER_MAX = 2000  # larger libraries get a search box before the clip list
PICKER_SHOWN = 200  # names listed at once after a search
PLOT_MAX = 50_000  # latent points drawn at most (a uniform sample, with the hits)

lib = library_or_stop()
enc = lib.encoder_info

st.title("Find similar clips")
st.caption(f"{len(lib.index.clips)} clips indexed · visual encoder **{enc.model}** "
           f"({plain(enc.weights)}, {enc.dim}-d, {enc.precision})")
st.markdown("Upload a clip or pick one of the library"
            + (", and/or describe what you look for," if lib.has_text else "")
            + " to see the clips that sound alike, look alike, and both.")

with st.sidebar:
    n_clips = len(lib.index.clips)
    k = st.slider("Hits per modality (k)", 1, min(20, n_clips), min(lib.default_k, n_clips), key="k")
    method = st.selectbox("Search method", lib.methods, index=lib.methods.index(lib.default_method),
                          format_func=lambda m: f"{m}: {DESCRIPTIONS[m]}", key="method")
    weights = None
    if method == "vidsim":
        audio_w = st.slider("Audio-visual: weight of the sound", 0.0, 1.0,
                            float(lib.default_weights.get("audio", 0.5)), 0.05, key="audio_weight",
                            help="Late fusion: 0 ranks by the picture only, 1 by the sound only.")
        weights = {"audio": audio_w, "visual": 1.0 - audio_w}
        if lib.has_text and st.session_state.get("text"):
            weights["text"] = st.slider("Weight of the text", 0.0, 1.0, 0.5, 0.05, key="text_weight",
                                        help="How much the description counts beside sound and picture.")
    exclude_self = st.toggle("Leave out the query itself and exact duplicates", key="exclude_self")
    st.caption(SCORE_HELP[method])

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
            st.session_state["query"] = {"name": upload.name, "video": upload.getvalue(), "feats": feats,
                                         "sha256": hashlib.sha256(upload.getvalue()).hexdigest()}
        st.session_state["query_id"] = upload.file_id
else:
    if len(lib.index.clips) <= PICKER_MAX:
        clips = lib.index.clips["clip"].tolist()
    else:  # a million names in one list would stall the page: search them first
        found = st.text_input("Find a library clip", key="clip_filter", placeholder="part of a file name")
        clips = lib.find_clips(found, PICKER_SHOWN)
        st.caption(f"{len(clips)} of {len(lib.index.clips):,} clips shown; type part of a name to narrow them.")
    clip = st.selectbox("Library clip", clips, index=None,
                        placeholder="Choose a clip of the library", key="library_clip")
    if clip and st.session_state.get("picked") != clip:  # a new pick (not a rerun, not "more like this")
        st.session_state["query"] = {"name": clip, "video": lib.clip_info(clip)["path"], "clip": clip}
    st.session_state["picked"] = clip

if lib.has_text:
    text = st.text_input("Text query", key="text", placeholder="e.g. a night sky over mountains",
                         help="Compared with every clip's frames (one a second) by the CLIP model that "
                              "embedded them.").strip()
else:
    text = st.text_input("Text query", key="text", disabled=True,
                         placeholder="not available with this library's image-only encoder",
                         help=f"Searching by text needs a CLIP model, which embeds text and images alike; this "
                              f"library was built with {enc.model}, an image-only encoder. Index it with CLIP "
                              "weights (`featurize.encoder` in params.yaml) to search by text.")

query = st.session_state.get("query")
results: dict = {}
if query or text:
    # searching is cheap (no decoding): redo it on every rerun with the sidebar's settings
    try:
        results = lib.search_all(feats=query.get("feats") if query else None,
                                 clip=query.get("clip") if query else None, k=k, method=method,
                                 weights=weights, exclude_self=exclude_self, text=text or None,
                                 sha256=query.get("sha256") if query else None)
    except ValueError as exc:
        st.error(plain(str(exc)))
if results:
    if query:
        st.markdown(f"#### Query: {plain(query['name'])}" + (f" · text: {plain(text)}" if text else ""))
        left, _ = st.columns([2, 3])
        show_video(query["video"], left)
    else:
        st.markdown(f"#### Text query: {plain(text)}")
    shown = [m for m in ("audio", "audio_visual", "visual", "text") if m in results]
    good = {m: r for m, r in results.items() if not isinstance(r, str)}
    shared: set[str] = set()
    if "audio" in good and "audio_visual" in good:
        shared = {h.clip for h in good["audio"].hits} & {h.clip for h in good["audio_visual"].hits}
        st.info(disagreement(good["audio"], good["audio_visual"]))
    for m, col in zip(shown, st.columns(len(shown))):
        with col:
            if m in good:
                results_column(lib, good[m], shared if m != "visual" else set(), key=m)
            else:
                st.subheader(TITLES[m])
                st.warning(plain(results[m]))

st.divider()
st.markdown("### Latent space")
plotted = lib.modalities_of("original") if "original" in lib.methods else []
if not plotted:
    st.info("No latent space to show: the original's VAEs were not trained for this library.")
for m, tab in zip(plotted, st.tabs([TITLES[m] for m in plotted]) if plotted else []):
    with tab:
        r = results.get(m)
        try:  # the original's VAE loads here, on first use
            latent = r.latent if r is not None and not isinstance(r, str) and query is not None else None
        except IntegrityError as exc:
            st.warning(f"The query cannot be placed: {plain(str(exc))}")
            latent = None
        has_query = latent is not None
        hits = [h.clip for h in r.hits] if r is not None and not isinstance(r, str) else []
        points = lib.points(m, limit=PLOT_MAX, keep=hits)
        fig, caption = latent_figure(
            points, m, query=latent, neighbours=hits if has_query else None,
            query_name=query["name"] if query else "query")
        if len(points) < len(lib.index.clips):
            caption += f" · a uniform sample of {len(points):,} of {len(lib.index.clips):,} clips, with the hits"
        st.caption(caption + " · the original's VAE latent (the hits come from the chosen method) "
                   "· click a point to see that clip")
        event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=f"latent-{m}",
                                width="stretch")
        picked = [p.get("customdata") for p in event.selection.get("points", [])] if event else []
        picked = [c for c in picked if isinstance(c, str) and lib.rows_of([c])[0] >= 0]
        if picked:
            row = lib.clip_info(picked[0])
            st.markdown(f"**{plain(picked[0])}** · audio label: {plain(row['audio_label'] or '-')} · "
                        f"visual label: {plain(row['visual_label'] or '-')}")
            show_video(row["path"])
