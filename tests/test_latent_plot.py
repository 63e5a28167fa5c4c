import sys

import numpy as np
import pandas as pd

from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "streamlit_app"))
from components.latent import latent_figure  # noqa: E402

EVIL = '<a href="https://example.org/">x</a>'


def test_labels_and_names_are_plain_text_in_plots():
    """A label or clip name with HTML never becomes a link (or any markup) in the plotly figure."""
    points = pd.DataFrame({"clip": [f"{EVIL}.mp4", "b.mp4", "c.mp4"], "path": "", "audio_label": [EVIL, "t", "t"],
                           "visual_label": ["v", "v", "w"], "z0": [0.0, 1.0, 2.0], "z1": [0.0, 1.0, 0.5]})
    fig, _ = latent_figure(points, "audio", query=np.array([0.5, 0.5]), query_name=f"<b>{EVIL}</b>")
    shown = [t.name for t in fig.data] + [str(x) for t in fig.data if t.text is not None for x in t.text]
    assert not any("<a" in s or "<b>" in s for s in shown), shown
    assert any("&lt;a href" in s for s in shown)
    assert f"{EVIL}.mp4" in list(fig.data[0].customdata) + list(fig.data[1].customdata)  # clicks still name the clip
