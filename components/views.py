"""Views that only draw: heatmaps with colour bars (plotly, hover shows the value), overlays."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from glimpse.display import display_size, faded_colorscale, resize_image, resize_map

#: Multiselect options for name lists: Enter takes the first match (not "Select N matches", which added
#: Smooth Grad-CAM++ to "SmoothGrad"), and matching is on the typed text, not a subsequence.
ONE_MATCH_ON_ENTER = {"select_all": False, "filter_mode": "contains"}


def heatmap_figure(
    values: np.ndarray,
    *,
    image: np.ndarray | None = None,
    title: str = "",
    colorscale: str = "Viridis",
    zmin: float | None = None,
    zmax: float | None = None,
    zmid: float | None = None,
    opacity: float = 0.6,
    colorbar_title: str = "",
    colorbar_side: str = "top",
    fade: bool = False,
    height: int = 320,
    max_side: int = 224,
) -> go.Figure:
    """A heatmap of ``values`` (H, W), optionally over ``image`` (uint8 (H', W', 3)), with a colour bar.

    Large inputs are downsampled to ``max_side`` for drawing only (:mod:`glimpse.display`); hover reports the
    map value. With ``fade`` (over an image) the colours fade to transparent at the neutral end of the range
    (:func:`glimpse.display.faded_colorscale`: 0 for a range centred at 0, else ``zmin``), so low values leave
    the image visible instead of tinting it with the colour map's low colour. ``colorbar_side="right"`` runs a
    long colour-bar title along the bar.
    """
    size = display_size(np.shape(values), max_side, enlarge=False)
    shown = resize_map(values, size)
    fig = go.Figure()
    trace_opacity = 1.0
    if image is not None:
        fig.add_trace(go.Image(z=resize_image(image, size), hoverinfo="skip"))
        trace_opacity = opacity
        if fade:
            centred = zmid is not None or (zmin is not None and zmax is not None and zmin < 0 < zmax)
            colorscale = faded_colorscale(colorscale, centred=centred, opacity=opacity)
            trace_opacity = 1.0  # the scale's alpha carries the opacity
    fig.add_trace(
        go.Heatmap(
            z=shown,
            colorscale=colorscale,
            zmin=zmin,
            zmax=zmax,
            zmid=zmid,
            opacity=trace_opacity,
            colorbar=dict(title=dict(text=colorbar_title, side=colorbar_side), thickness=12, len=0.9),
            hovertemplate="x=%{x}, y=%{y}<br>value=%{z:.4g}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", visible=False, scaleanchor="x")
    fig.update_xaxes(visible=False)
    fig.update_layout(
        title=dict(text=title, font=dict(size=13)), height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0)
    )
    return fig
