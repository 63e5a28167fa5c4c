"""vidsim app: search a video library by a clip (audio-only vs audio-visual), browse the library."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="vidsim: similar video clips", page_icon=":material/movie:", layout="wide")

page = st.navigation([
    st.Page("views/search.py", title="Search", icon=":material/search:", default=True),
    st.Page("views/library.py", title="Library", icon=":material/video_library:"),
])
page.run()
