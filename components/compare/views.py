"""The Compare lens's views: the locked grid of panels, agreement, generate→classify→explain, regions, export.

They only draw the :class:`glimpse.export.RunRecord` the session keeps (:mod:`components.compare.state`); every
display control (:mod:`components.compare.controls`) re-slices it, nothing is recomputed. Attention panels are
drawn by the Cross-attention page's faded overlay, so where a word draws no attention the image shows through.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components import probe as probe_widgets
from components import session_results
from components.attention import views as attention_views
from components.compare import EXPORT_KEY, controls, state
from components.views import heatmap_figure
from glimpse.compare.run import AGREEMENT, DISPLAY, PREDICTIONS, REGION, CompareSpec, matrix_from_rows
from glimpse.display import (
    DIVERGING,
    SIGNED_MODES,
    auto_mode,
    colour_range,
    display_size,
    resize_image,
    resize_map,
    shown_values,
)
from glimpse.export import RunRecord, bundle_bytes
from glimpse.probe import Probe, run_maps, with_probe

METRICS = {"spearman": "Spearman ρ", "iou": "top-k % IoU", "pointing": "pointing game (row's peak in column's region)"}
DISPLAY_SIDE = 160  # every panel is drawn on the same grid: hover (x, y) names the same pixel in each
PANEL_HEIGHT = 260
#: room above every panel's plot for its two-line title (name, then lens): every cell of a row starts alike
PANEL_TOP = 44
CITATIONS = (
    "Spearman rank correlation as in Adebayo et al., Sanity Checks for Saliency Maps (NeurIPS 2018); pointing "
    "game after Zhang et al., Top-down Neural Attention by Excitation Backprop (ECCV 2016); MSG and MUC from "
    "Sarıtaş et al., Complexity in Complexity (arXiv 2501.15890); word maps by DAAM (Tang et al., ACL 2023)."
)
#: The Values control's choices as glimpse.display value modes; "auto" is the run report's rule (signed if any
#: value is negative), so a raw panel has the colours of the same map in the bundle's report.
_NORM_MODES = {"raw": "auto", "|map|": "absolute", "min-max per panel": "minmax"}


def _shown(values: np.ndarray, norm: str, colorscale: str) -> tuple[np.ndarray, dict]:
    """Display transform (the raw map stays in the record) and the colour-axis options that go with it.

    One rule with the report (:func:`glimpse.export.colour_scale`): a raw map with any negative value is signed,
    drawn in the diverging RdBu_r over ±max|v|; any other map runs from 0 (min-max: [0, 1]) to its maximum in
    the chosen colour scale. The range comes from the raw map, not from its resized copy.
    """
    mode = _NORM_MODES[norm]
    if mode == "auto":
        mode = auto_mode(values)
    shown = shown_values(np.asarray(values, dtype=np.float64), mode)
    zmin, zmax, zmid = colour_range(shown, mode)
    return shown, dict(zmin=zmin, zmax=zmax, zmid=zmid, colorscale=DIVERGING if mode in SIGNED_MODES else colorscale)


def panel_title(name: str) -> str:
    """Two lines, the map then its lens (“Grad-CAM” over “saliency”): a map name such as “complexity: colours/px
    (4 bit)” on one line was cut at four or more columns, and every panel's header is the same height."""
    lens, _, label = name.partition(": ")
    return _two_lines(label, lens) if label else _two_lines(name, "")


def _two_lines(top: str, below: str) -> str:
    return f"{top}<br><span style='font-size:11px;color:#808495'>{below or '&nbsp;'}</span>"


def _headed(fig: go.Figure, title: str) -> go.Figure:
    """One header and one height for every cell of the grid; the picture sits right under the header (not
    centred in the plot), so the pictures of a row line up whatever the width of their colour bars."""
    fig.update_layout(
        title=dict(text=title, font=dict(size=13), x=0, xanchor="left", y=1.0, yref="container", yanchor="top",
                   pad=dict(t=10, l=4)),
        margin=dict(l=0, r=0, t=PANEL_TOP, b=0),
        height=PANEL_HEIGHT,
    )  # fmt: skip
    fig.update_yaxes(constrain="domain", constraintoward="top")
    fig.update_xaxes(constrain="domain", constraintoward="left")
    fig.update_traces(colorbar=dict(y=1.0, yanchor="top"), selector=dict(type="heatmap"))
    return fig


def panel(record: RunRecord, name: str, display: dict, grid: tuple[int, int], image_small: np.ndarray,
          mark: tuple[int, int] | None = None) -> go.Figure:  # fmt: skip
    entry = record.map(name)
    values, options = _shown(entry.values, display["norm"], display["colorscale"])
    shown, label, opacity = (
        resize_map(values, grid),
        "raw" if display["norm"] == "raw" else display["norm"],
        float(display["opacity"]),
    )
    if entry.kind == "attention":  # faded at the low end, as on the Cross-attention page (one code path)
        fig = attention_views.overlay_figure(
            shown, image_small, label=label, height=PANEL_HEIGHT, zmin=options["zmin"], zmax=options["zmax"],
            opacity=opacity, colorscale=options["colorscale"], colorbar_side="top", max_side=max(grid),
        )  # fmt: skip
    else:
        fig = heatmap_figure(shown, image=image_small, opacity=opacity, colorbar_title=label, max_side=max(grid),
                             **options)  # fmt: skip
    return _headed(probe_widgets.clickable(fig, grid, mark, record.image.shape), panel_title(name))


def input_panel(record: RunRecord, image_small: np.ndarray, mark: tuple[int, int] | None = None) -> go.Figure:
    """The input as a panel of the grid: the same header and height as the maps beside it, a right margin about
    the width of their colour bars so the picture has their size."""
    h, w = record.image.shape[:2]
    fig = go.Figure(go.Image(z=image_small, hovertemplate="x=%{x}, y=%{y}<br>rgb=%{z}<extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    _headed(
        probe_widgets.clickable(fig, image_small.shape[:2], mark, record.image.shape),
        _two_lines("input", f"{w}×{h} px"),
    )
    fig.update_layout(margin=dict(r=56))
    return fig


@st.fragment
def results_view() -> None:
    """The locked grid, the agreement matrix, generate→classify→explain, region complexity, export."""
    record = state.stored()
    if record is None:
        return
    grid = display_size(record.image.shape, DISPLAY_SIDE)
    image_small = resize_image(record.image, grid)
    spec = CompareSpec.from_params(record.params)
    header_view(record)
    xy = controls.probe_inputs(record)
    display = grid_view(record, grid, image_small, xy)
    found = probe_view(record, xy)
    agreement_view(record, spec)
    pair_view(record, spec, display, grid, image_small, xy)
    state.remember(record)
    region_view(record, spec)
    export_view(record if found is None else with_probe(record, found), display)


def header_view(record: RunRecord) -> None:
    """The image's name and what the saliency maps explain."""
    st.subheader(f"{record.image_name}")
    preds = record.tables.get(PREDICTIONS, ())
    saliency = [e for e in record.maps if e.kind == "saliency"]
    if saliency:
        meta = saliency[0].meta
        top = f" · classifier's top-1: **{preds[0]['label']}** ({preds[0]['probability']:.1%})" if preds else ""
        st.caption(
            f"Saliency explains **{meta.get('target_label')}** (class {meta.get('target')}) of `{meta.get('model_id')}`"
            f"{top}. Seeds: {dict(record.seeds)}. Created {record.created}."
        )


def _chart(fig: go.Figure, key: str, grid: tuple[int, int], record: RunRecord) -> None:
    """A panel whose click selects the probed pixel."""
    probe_widgets.chart(fig, key, grid, record.image.shape, controls.PROBE)


def grid_view(record: RunRecord, grid: tuple[int, int], image_small: np.ndarray, xy=None) -> dict:
    """Display controls (they re-slice the stored run; nothing is recomputed) and the grid of panels, drawn row
    by row, so the panels of a row start at the same height."""
    display = controls.display_controls(record)
    chosen = display["panels"] or []

    n = int(display["columns"])
    cells = [None, *(name for name in record.map_names if name in chosen)]  # None: the input
    for start in range(0, len(cells), n):
        for col, name in zip(st.columns(n), cells[start : start + n]):
            with col:
                if name is None:
                    _chart(input_panel(record, image_small, xy), "cmp_input", grid, record)
                else:
                    _chart(panel(record, name, display, grid, image_small, xy), f"cmp_panel_{name}", grid, record)
    st.caption(
        f"All panels share one {grid[1]}×{grid[0]} grid: hover x, y name the same pixel in every panel. "
        "Saliency maps are at the model input and stretched back to the image's shape; MSG maps at 1/s of it."
    )
    return display


def agreement_view(record: RunRecord, spec: CompareSpec) -> None:
    """How far any two maps agree, as a matrix and a table."""
    names = list(record.map_names)
    st.subheader("Agreement between maps")
    metric = controls.metric_picker(METRICS)
    rows = record.tables.get(AGREEMENT, ())
    matrix = matrix_from_rows(tuple(names), rows, metric)
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=names,
            y=names,
            zmin=-1.0 if metric == "spearman" else 0.0,
            zmax=1.0,
            colorscale="RdBu_r" if metric == "spearman" else "Viridis",
            colorbar=dict(title=metric, thickness=12),
            hovertemplate="%{y} vs %{x}<br>%{z:.3f}<extra></extra>",
            text=np.round(matrix, 2),
            texttemplate="%{text}",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=120 + 34 * len(names), margin=dict(l=0, r=0, t=10, b=0))
    st.plotly_chart(fig, key="cmp_matrix")
    st.caption(
        f"On a common grid of {spec.agreement_side} px on the longer side; top-k = {spec.k:g} %; "
        f"{'|map|' if spec.absolute else 'signed maps'}. {CITATIONS}"
    )
    with st.expander("All pairs as a table"):
        st.dataframe(pd.DataFrame(rows), hide_index=True)


def pair_view(record: RunRecord, spec: CompareSpec, display: dict, grid, image_small, xy=None) -> None:
    """Generate → classify → explain: a prompt word's attention beside a classifier map of the generated image."""
    words = [e for e in record.maps if e.kind == "attention"]
    saliency = [e for e in record.maps if e.kind == "saliency"]
    if not (words and saliency):
        return
    preds = record.tables.get(PREDICTIONS, ())
    st.subheader("Generate → classify → explain")
    st.caption(f"Prompt: “{record.prompt}”. The classifier sees the generated image; its top classes:")
    st.dataframe(pd.DataFrame(preds), hide_index=True)
    c1, c2 = st.columns(2)
    word, partner = controls.pair_pickers([e.name for e in words], [e.name for e in saliency], c1, c2)
    with c1:
        _chart(panel(record, word, display, grid, image_small, xy), "cmp_pair_word", grid, record)
    with c2:
        _chart(panel(record, partner, display, grid, image_small, xy), "cmp_pair_sal", grid, record)
    pair = {(r["map_a"], r["map_b"]): r for r in record.tables.get(AGREEMENT, ())}
    ab, ba = pair.get((word, partner)), pair.get((partner, word))
    if ab and ba:
        iou_col = next(c for c in ab if c.endswith("pct_iou"))
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Spearman ρ", f"{ab['spearman']:.3f}")
        m2.metric(f"Top-{spec.k:g} % IoU", f"{ab[iou_col]:.3f}")
        m3.metric("Word peak in class region", "hit" if ab["pointing_a_in_b"] else "miss")
        m4.metric("Class peak in word region", "hit" if ba["pointing_a_in_b"] else "miss")


def probe_view(record: RunRecord, xy: tuple[int, int] | None) -> Probe | None:
    """The probed pixel in every map: value and rank percentile, the words by attention, the complexity there."""
    if xy is None:
        return None
    note = "Saliency maps are at the model input, MSG at 1/s of the image. The probe goes into the exported bundle."
    return probe_widgets.panel(record.image.shape, run_maps(record), xy, "cmp_probe", note)


def region_view(record: RunRecord, spec: CompareSpec) -> None:
    """Complexity inside vs outside the salient region."""
    region = record.tables.get(REGION, ())
    if not region:
        return
    st.subheader("Complexity inside vs outside the salient region")
    st.caption(
        f"Region: the top {spec.k:g} % pixels of **{region[0]['region_map']}**. MSG: weighted mean Sobel "
        "magnitude over scales 1, 2, 4, 8 inside vs outside; MUC: distinct colours at "
        f"{spec.bits} bits per channel (counts grow with area, so compare the per-1000-pixel row)."
    )
    st.dataframe(pd.DataFrame(region)[["feature", "inside", "outside"]], hide_index=True)


def export_view(record: RunRecord, display: dict) -> None:
    """Prepare and download the run bundle, with the display settings it was prepared with."""
    st.subheader("Export")
    token = (
        state.run_token(record) + hashlib.sha1(json.dumps(display, sort_keys=True, default=str).encode()).hexdigest()
    )
    if controls.prepare_pressed():
        with_display = dataclasses.replace(record, params={**record.params, DISPLAY: display})
        session_results.put(EXPORT_KEY, (token, bundle_bytes(with_display)))
    prepared = session_results.get(EXPORT_KEY)
    if prepared is not None:
        st.download_button(
            "Download run bundle (.zip)",
            data=prepared[1],
            file_name=f"glimpse-{_slug(record.image_name)}.zip",
            mime="application/zip",
            key="cmp_download",
        )
        if prepared[0] not in (token, "imported"):
            st.caption("Display settings changed since the bundle was prepared; prepare it again to include them.")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")[:40] or "run"
