"""The probe as every page draws it: click a panel (or type x and y) to read one pixel in every map.

Streamlit's point selection fires on markers, not on a heatmap's cells, so a probed panel carries invisible
click targets over its display grid (:func:`clickable`); a click's ``on_select`` callback (:func:`clicked`) turns
the clicked cell into the image pixel whose centre it holds and writes it into the page's x and y inputs
(:func:`pixel_inputs`), which are drawn after it and so show it. The values come from
:func:`glimpse.probe.probe_maps` (the library's rule: each map read at the cell holding the pixel's centre);
:func:`maps_table` and :func:`words_table` draw them. Compare, Saliency, Cross-attention and the
Diffusion classifier use these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from glimpse.display import PROBE_RING
from glimpse.probe import Probe, probe_maps

RULE = (
    "Each map is read at the cell holding the pixel's centre (a map of h×w cells over an H×W image: row "
    "⌊(y+½)·h/H⌋, column ⌊(x+½)·w/W⌋); the percentile is the share of the map's cells at most this value."
)


@dataclass(frozen=True)
class Keys:
    """The session-state keys of one page's probed pixel (each page keeps its own)."""

    x: str
    y: str


def clickable(fig: go.Figure, grid: tuple[int, int], mark, image_shape) -> go.Figure:
    """Invisible click targets over the display ``grid`` (h, w) of ``fig`` (at most 64 a side) and the probed
    pixel ``mark`` (x, y of an image of ``image_shape``) as a ring."""
    gh, gw = grid
    step = max(1, int(np.ceil(max(gh, gw) / 64)))
    ys, xs = np.mgrid[0:gh:step, 0:gw:step]
    fig.add_trace(go.Scatter(x=xs.ravel(), y=ys.ravel(), mode="markers", hoverinfo="none", showlegend=False,
                             marker=dict(size=max(6, 2 * step), opacity=0), name="probe"))  # fmt: skip
    if mark is not None:
        h, w = image_shape[:2]
        mx, my = (mark[0] + 0.5) * gw / w - 0.5, (mark[1] + 0.5) * gh / h - 0.5
        fig.add_trace(go.Scatter(x=[mx], y=[my], mode="markers", hoverinfo="skip", showlegend=False,
                                 marker=dict(symbol="circle-open", size=14, color=f"rgb{PROBE_RING}", line=dict(width=2))))  # fmt: skip
    return fig


def clicked(event_key: str, grid: tuple[int, int], image_shape: tuple[int, ...], keys: Keys) -> None:
    """A panel's click (``on_select`` callback): the clicked cell of the display grid as the image pixel whose
    centre it holds, into the x and y inputs. A cleared selection keeps the pixel."""
    event = st.session_state.get(event_key)
    points = (event or {}).get("selection", {}).get("points", [])
    if not points:
        return
    (gh, gw), (h, w) = grid, image_shape[:2]
    gx, gy = float(points[0]["x"]), float(points[0]["y"])
    st.session_state[keys.x] = min(w - 1, max(0, int((round(gx) + 0.5) * w / gw)))
    st.session_state[keys.y] = min(h - 1, max(0, int((round(gy) + 0.5) * h / gh)))


def chart(fig: go.Figure, key: str, grid: tuple[int, int], image_shape: tuple[int, ...], keys: Keys, **kw) -> None:
    """``st.plotly_chart`` of a :func:`clickable` figure whose click selects the probed pixel."""
    st.plotly_chart(fig, key=key, on_select=lambda: clicked(key, grid, image_shape, keys), selection_mode="points",
                    **kw)  # fmt: skip


def pixel_inputs(image_shape: tuple[int, ...], keys: Keys, what: str = "every map") -> tuple[int, int] | None:
    """The probed pixel (x, y) of an image of ``image_shape``, or None before one is chosen."""
    h, w = image_shape[:2]
    for key, top in ((keys.x, w - 1), (keys.y, h - 1)):  # a pixel of an earlier, larger image
        value = st.session_state.get(key)
        if value is not None and not 0 <= value <= top:
            st.session_state[key] = None
    c1, c2, c3 = st.columns([1, 1, 4])
    default = {} if keys.x in st.session_state else {"value": None}
    x = c1.number_input("Pixel x", 0, w - 1, step=1, key=keys.x, **default)
    default = {} if keys.y in st.session_state else {"value": None}
    y = c2.number_input("Pixel y", 0, h - 1, step=1, key=keys.y, **default)
    c3.caption(f"Click a map (or type x and y) to read that pixel in {what}.")
    return None if x is None or y is None else (int(x), int(y))


def heading(found: Probe) -> None:
    st.markdown(f"**Pixel ({found.x}, {found.y})** of the {found.image_shape[1]}×{found.image_shape[0]} image")


def maps_table(found: Probe, key: str) -> None:
    """Every map's value at the pixel, its percentile and the cell read (attention maps: :func:`words_table`)."""
    rows = [{"map": v.name, "value": v.value, "percentile in its map": v.percentile,
             "cell (row, column)": f"{v.cell[0]}, {v.cell[1]} of {v.shape[0]}×{v.shape[1]}"}
            for v in found.values if v.kind != "attention"]  # fmt: skip
    if rows:
        st.dataframe(pd.DataFrame(rows).style.format(precision=4), hide_index=True, key=key)


def words_table(found: Probe, key: str) -> None:
    """The words by attention at the pixel, each with its share of the words' sum there."""
    if found.words:
        words = pd.DataFrame([{"word": w, "attention": v, "share": s} for w, v, s in found.words])
        st.dataframe(words.style.format({"attention": "{:.4g}", "share": "{:.1%}"}), hide_index=True, key=key)


def panel(image_shape: tuple[int, ...], maps, xy: tuple[int, int] | None, key: str, note: str = "") -> Probe | None:
    """The probe of ``maps`` ``(name, kind, values, meta)`` at ``xy`` (nothing before a pixel is chosen): the
    pixel; each map's value and percentile there (attention maps: as the words by attention, with their shares);
    ``note`` says where the maps live."""
    if xy is None:
        return None
    found = probe_maps(image_shape[:2], maps, *xy)
    heading(found)
    left, right = st.columns([3, 2])
    with left:
        maps_table(found, f"{key}_maps")
    with right:
        words_table(found, f"{key}_words")
        st.caption(f"{RULE} {note}".strip())
    return found
