"""vidsim app (placeholder until the dashboard issue): shows the library's status."""

from __future__ import annotations

import streamlit as st

from vidsim.search import Library, NotBuilt

st.set_page_config(page_title="vidsim", layout="wide")
st.title("vidsim: similar video clips")


@st.cache_resource
def load_library() -> Library:
    return Library.load()


try:
    lib = load_library()
except NotBuilt as exc:
    st.warning(f"{exc}")
    st.code("make demo   # or: dvc repro", language="bash")
    st.stop()

enc = lib.encoder_info
st.write(f"**{len(lib.index.clips)} clips indexed**; visual encoder: **{enc.model}** "
         f"({enc.weights}, {enc.dim}-d)")
st.dataframe(lib.status(), hide_index=True)
