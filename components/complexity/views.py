"""The visual-complexity lens's views: the feature values with their explanations, per-scale bars, the maps
(each with its colour bar), the batch table and the fits; and the page's three tabs, each controls → a cached
service → these views. Display controls re-slice stored results inside st.fragment blocks, so they never
recompute."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components import jobs, session_results
from components.complexity import EXPLAIN, controls, services
from components.image_input import image_picker
from components.views import heatmap_figure
from glimpse.complexity import BITS, SCALES, WEIGHTS, ComplexityFeatures
from glimpse.complexity.fit import FormulaScore
from glimpse.complexity.maps import ComplexityMaps


# ------------------------------------------------------------------------------------------- figures
def feature_panel(f: ComplexityFeatures) -> None:
    """The feature values, each with its one-sentence explanation."""
    c1, c2 = st.columns(2)
    c1.metric("MSG", f"{f.msg:.4f}", help=EXPLAIN["MSG"])
    c1.caption(EXPLAIN["MSG"])
    if f.edge_density is not None:
        c2.metric("Edge density", f"{f.edge_density:.4f}", help=EXPLAIN["edge_density"])
        c2.caption(EXPLAIN["edge_density"])
    st.markdown("**MUC₁ … MUC₈** (distinct colours, weighted over scales)")
    st.dataframe(pd.DataFrame([{f"MUC{b}": f.muc[b - 1] for b in BITS}]), hide_index=True, width="stretch")
    st.caption(EXPLAIN["MUC"])
    if f.standins:
        cols = st.columns(len(f.standins))
        for col, (name, value) in zip(cols, f.standins.items()):
            col.metric(name, f"{value:g}", help=EXPLAIN["standin"])
        st.caption(EXPLAIN["standin"])


def per_scale_figures(f: ComplexityFeatures, bits: int) -> tuple[go.Figure, go.Figure]:
    """Two small bar charts: the MSG term and the MUC_bits colour count at each scale, with their weights."""
    labels = [f"1/{s} (w={w})" if s > 1 else f"full (w={w})" for s, w in zip(SCALES, WEIGHTS)]
    g = go.Figure(go.Bar(x=labels, y=f.msg_per_scale, marker_color="#4c78a8", hovertemplate="%{y:.4f}<extra></extra>"))
    g.update_layout(title="MSG term per scale (mean |∇|)", height=260, margin=dict(l=0, r=0, t=30, b=0))
    counts = f.muc_counts[bits - 1]
    c = go.Figure(go.Bar(x=labels, y=counts, marker_color="#f58518", hovertemplate="%{y} colours<extra></extra>"))
    c.update_layout(title=f"Distinct {bits}-bit colours per scale", height=260, margin=dict(l=0, r=0, t=30, b=0))
    return g, c


def map_figure(m: ComplexityMaps, kind: str, scale_index: int, image: np.ndarray | None, colorscale: str) -> go.Figure:
    """Heatmap (with colour bar) of one per-scale map; ``image`` draws it over the picture."""
    s = SCALES[scale_index]
    where = "full size" if s == 1 else f"scale 1/{s}"
    if kind == "gradient":
        values = m.gradient[scale_index]
        title, bar = f"Sobel magnitude, {where} (weight {WEIGHTS[scale_index]})", "mean |∇|"
    elif kind == "colour":
        values = m.colour[scale_index].astype(np.float32)
        title, bar = f"Distinct {m.bits}-bit colours per {m.window}×{m.window} tile, {where}", "colours"
    else:
        values = m.edges.astype(np.float32)
        title, bar = "Canny edges (1 = edge)", "edge"
    if image is not None and values.shape != image.shape[:2]:
        values = _upsample(values, image.shape[:2])
    return heatmap_figure(
        values, image=image, title=title, colorscale=colorscale, colorbar_title=bar, zmin=0.0, height=340, max_side=480
    )


def _upsample(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour upsampling of a coarse map to the image size, so tiles stay visible as tiles."""
    h, w = size
    ys = np.minimum((np.arange(h) * values.shape[0] / h).astype(int), values.shape[0] - 1)
    xs = np.minimum((np.arange(w) * values.shape[1] / w).astype(int), values.shape[1] - 1)
    return values[ys][:, xs]


def scatter_figure(table: pd.DataFrame, x: str, y: str) -> go.Figure:
    fig = go.Figure(
        go.Scatter(
            x=table[x],
            y=table[y],
            mode="markers",
            text=table.get("image_id"),
            hovertemplate="%{text}<br>" + f"{x}=%{{x:.4g}}<br>{y}=%{{y:.4g}}<extra></extra>",
        )
    )
    fig.update_layout(xaxis_title=x, yaxis_title=y, height=360, margin=dict(l=0, r=0, t=10, b=0))
    return fig


def fit_table(results: list[FormulaScore]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "formula": r.name,
                "mean test Spearman": round(r.mean_rho, 4),
                "std": round(r.std_rho, 4),
                "folds": len(r.fold_rho),
                "n": r.n,
                "model": r.formula,
            }
            for r in results
        ]
    )


def fit_bar(results: list[FormulaScore]) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=[r.name for r in results],
            y=[r.mean_rho for r in results],
            error_y=dict(type="data", array=[r.std_rho for r in results]),
            marker_color="#54a24b",
            hovertemplate="%{x}<br>ρ = %{y:.4f}<extra></extra>",
        )
    )
    fig.update_layout(yaxis_title="mean test Spearman ρ", height=320, margin=dict(l=0, r=0, t=10, b=0))
    # Headline formulas differ by a few hundredths: start the axis near the lowest bar, not at 0.
    low = min(r.mean_rho - r.std_rho for r in results)
    fig.update_yaxes(range=[max(-1.0, np.floor(low * 10) / 10), 1])
    return fig


def predicted_figure(r: FormulaScore) -> go.Figure:
    fig = go.Figure(
        go.Scatter(
            x=r.rated,
            y=r.predicted,
            mode="markers",
            text=list(r.image_id),
            marker=dict(size=5, opacity=0.7),
            hovertemplate="%{text}<br>rated %{x:.3f}<br>predicted %{y:.3f}<extra></extra>",
        )
    )
    lo, hi = float(np.min(r.rated)), float(np.max(r.rated))
    fig.add_trace(
        go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dot", color="grey"), hoverinfo="skip")
    )
    fig.update_layout(
        xaxis_title="human rating (complexity)",
        yaxis_title="test-fold prediction (mean over repeats)",
        showlegend=False,
        height=360,
        margin=dict(l=0, r=0, t=10, b=0),
    )
    return fig


# ------------------------------------------------------------------------------------------- the page's tabs
def single_image_tab() -> None:
    """One image: its features, the per-scale breakdown and the maps of where the complexity is."""
    left, right = st.columns([1, 2])
    with left:
        image = image_picker(key="complexity")
        standins = controls.standins_toggle()
    if image is None:
        st.info("Pick a sample image or upload one to begin.")
        return
    try:
        feats = services.single(image, standins)
    except ValueError as err:
        st.error(f"{err}. Pick a larger image (at least 8×8 pixels).")
        return
    with right:
        feature_panel(feats)

    @st.fragment
    def breakdown() -> None:
        st.subheader("Per scale")
        bits = controls.bits_control()
        g, c = per_scale_figures(feats, bits)
        a, b = st.columns(2)
        a.plotly_chart(g, width="stretch", key="cx_msg_scales")
        b.plotly_chart(c, width="stretch", key="cx_muc_scales")
        st.subheader("Where is the complexity?")
        shown = controls.map_controls()
        m = services.maps(image, bits, shown.window)
        backdrop = image.pixels if shown.overlay else None
        if shown.kind == "edges":
            st.plotly_chart(map_figure(m, "edges", 0, backdrop, shown.colorscale), width="stretch", key="cx_edges")
        else:
            cols = st.columns(2)
            for i in range(len(SCALES)):
                fig = map_figure(m, shown.kind, i, backdrop, shown.colorscale)
                cols[i % 2].plotly_chart(fig, width="stretch", key=f"cx_map_{i}")
        st.caption(
            "Raw values, one colour bar per map. The mean of each gradient map is that scale's MSG term; "
            "colour maps count distinct colours inside each tile of the area-resized image."
        )

    breakdown()


def batch_tab() -> None:
    """Many images or zips scored into a sortable, downloadable table with a scatter of any two features."""
    st.markdown(
        "Upload many images or a zip. Each image gets MSG, MUC1…MUC8 and the edge density; the CSV joins with "
        "your ratings for the model tab (add a `complexity` column)."
    )
    request = controls.batch_form()
    if request is not None:
        with jobs.bar("Scoring") as progress:
            table, errors = services.score_uploads(list(request.uploads), request.standins, progress)
        session_results.put(services.BATCH_KEY, (table, list(request.skipped) + errors))

    from components.batch_ui import dataset_runner
    from glimpse.batch import ComplexityTask

    dataset_runner("complexity", lambda out, threads: ComplexityTask(threads=threads), key="cx_dataset")
    batch_results()


@st.fragment
def batch_results() -> None:
    stored = session_results.get(services.BATCH_KEY)
    if stored is None:
        return
    table, problems = stored
    if problems:
        with st.expander(f"{len(problems)} file(s) skipped", expanded=table.empty):
            st.markdown("\n".join(f"- {p}" for p in problems))
    if table.empty:
        st.error("No image could be scored. Upload PNG/JPEG/WebP/TIFF/GIF files or a zip of them.")
        return
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={"thumbnail": st.column_config.ImageColumn("image", width="small")},
        key="cx_batch_table",
    )
    csv = services.table_csv(table)
    st.download_button("Download CSV", csv, file_name="complexity.csv", mime="text/csv", key="cx_batch_csv")
    numeric = [c for c in table.columns if c not in ("thumbnail", "image_id")]
    a, b = st.columns(2)
    x = a.selectbox("x", numeric, index=0, key="cx_scatter_x")
    y = b.selectbox("y", numeric, index=min(4, len(numeric) - 1), key="cx_scatter_y")
    st.plotly_chart(scatter_figure(table, x, y), width="stretch", key="cx_scatter")


def paper_model_tab() -> None:
    """The paper's cross-validated OLS formulas on its tables or the user's CSV."""
    st.markdown(
        "Ordinary least squares on human ratings with the paper's protocol: 3-fold cross-validation repeated M times "
        "(seeds 1…M), scored by the mean Spearman ρ on the test folds. Base regressors: √(SAM masks) and "
        "√(FC-CLIP classes) from the shipped tables; add MSG, MUC4 and the Gemini surprise score."
    )
    request = controls.fit_form()
    if request is not None:
        try:
            scores = services.fit(request.dataset, request.csv, request.formulas, request.repeats)
            session_results.put(services.FIT_KEY, (request.dataset, request.repeats, scores))
        except ValueError as err:
            st.error(f"{err}. Pick formulas whose columns the table has, or add the columns to your CSV.")
    fit_results()


@st.fragment
def fit_results() -> None:
    stored = session_results.get(services.FIT_KEY)
    if stored is None:
        return
    dataset, m, results = stored
    st.markdown(f"**{dataset}** · {results[0].n} images · M = {m} repeats × 3 folds")
    st.dataframe(fit_table(results), hide_index=True, width="stretch", key="cx_fit_table")
    st.plotly_chart(fit_bar(results), width="stretch", key="cx_fit_bar")
    pick = st.selectbox("Predicted vs rated for", [r.name for r in results], key="cx_fit_pick")
    chosen_result = next(r for r in results if r.name == pick)
    st.plotly_chart(predicted_figure(chosen_result), width="stretch", key="cx_fit_scatter")
    st.download_button(
        "Download scores (CSV)",
        fit_table(results).to_csv(index=False).encode(),
        file_name=f"{dataset}-fit.csv",
        mime="text/csv",
        key="cx_fit_csv",
    )
