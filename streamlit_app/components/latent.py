"""Plotly view of a latent space: library points by label, the query, lines to its neighbours."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go

from vidsim.modalities import RELEVANCE
from vidsim.projection import project_2d

# distinct colours for the first label (red is left to the query's star), shapes for the second
PALETTE = [c for c in plotly.colors.qualitative.Dark24 if c != "#FB0D0D"]
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "triangle-down", "pentagon", "hexagon")


def _text(value: str) -> str:
    """Plain text for plotly, which renders <a>, <b>, <br> and friends in names and hover labels."""
    return html.escape(str(value), quote=False)


def latent_figure(points: pd.DataFrame, modality: str, query: np.ndarray | None = None,
                  neighbours: list[str] | None = None, query_name: str = "query"
                  ) -> tuple[go.Figure, str]:
    """The library's latent points (hover: clip name), coloured by label where there are labels.

    Returns the figure and a caption naming the projection.
    """
    z = points[[c for c in points.columns if c.startswith("z")]].to_numpy()
    extra = [query[None, :]] if query is not None else []
    (xy, *q), caption = project_2d(z, *extra)
    keys = list(RELEVANCE[modality])
    labels = points[keys[0]].astype(str)
    for key in keys[1:]:  # vectorised: a row-wise join takes seconds on a 50,000-point sample
        labels = labels + " · " + points[key].astype(str)
    has_labels = bool((points[list(RELEVANCE[modality])] != "").all(axis=None))
    fig = go.Figure()
    # WebGL beyond a few thousand points keeps a 50,000-point sample responsive
    scatter = go.Scattergl if len(points) > 5000 else go.Scatter
    colour = points[keys[0]].astype(str).to_numpy()
    shape = points[keys[1]].astype(str).to_numpy() if len(keys) > 1 else np.full(len(points), "")
    colours, shapes = sorted(set(colour)), sorted(set(shape))
    # thousands of songs cannot be told apart: one colour, the label in the hover text
    grouped = has_labels and len(colours) <= len(PALETTE) and len(shapes) <= len(SYMBOLS)
    groups = sorted(set(zip(colour, shape))) if grouped else [None]
    for group in groups:
        mask = ((colour == group[0]) & (shape == group[1])) if group is not None else np.ones(len(points), bool)
        marker = {"size": 9, "opacity": 0.8}
        if group is not None:
            marker.update(color=PALETTE[colours.index(group[0])], symbol=SYMBOLS[shapes.index(group[1])])
        fig.add_trace(scatter(
            x=xy[mask, 0], y=xy[mask, 1], mode="markers",
            name=_text(" · ".join(g for g in group if g)) if group is not None else "library",
            customdata=points.loc[mask, "clip"],
            text=(points.loc[mask, "clip"] + (" · " + labels[mask] if group is None and has_labels else "")).map(_text),
            hovertemplate="%{text}<extra></extra>",
            marker=marker,
        ))
    if q:
        qx, qy = q[0][0]
        if neighbours:
            idx = points.index[points["clip"].isin(neighbours)]
            lx, ly = [], []
            for i in idx:
                lx += [qx, xy[i, 0], None]
                ly += [qy, xy[i, 1], None]
            fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", name="nearest",
                                     line={"color": "rgba(200,30,30,0.5)", "width": 1},
                                     hoverinfo="skip"))
        fig.add_trace(go.Scatter(
            x=[qx], y=[qy], mode="markers", name="query", text=[_text(query_name)],
            hovertemplate="query: %{text}<extra></extra>",
            marker={"symbol": "star", "size": 18, "color": "crimson", "line": {"width": 1}},
        ))
    title = " · ".join(k.replace("_label", "") for k in keys) if grouped else None
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      legend={"x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top",  # beside the axes, not on them
                              "title": {"text": title}},
                      xaxis_title="dim 1", yaxis_title="dim 2", clickmode="event+select")
    return fig, caption
