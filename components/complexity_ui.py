"""The visual-complexity page's Streamlit layer: cached services, upload handling, widgets and views.

Features, maps and fits are computed by glimpse.complexity behind cached calls keyed by plain values (image digest,
bytes, numbers); display controls (which map, overlay, colour scale, scatter axes) re-slice stored results inside
st.fragment blocks, so they never recompute.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from components import jobs, session_results
from components.image_input import BY_DIGEST, UPLOAD_MB, ImageChoice, image_picker
from components.uploads import BY_UPLOAD, Upload, expand_uploads
from components.views import heatmap_figure
from glimpse.complexity import BITS, SCALES, STANDINS, WEIGHTS, ComplexityFeatures, complexity_batch
from glimpse.complexity.fit import (
    HEADLINE_FORMULAS,
    FormulaScore,
    cross_validate,
    default_repeats,
    prepare,
    shipped_tables,
)
from glimpse.complexity.maps import ComplexityMaps, complexity_maps
from glimpse.display import SEQUENTIAL_MAPS, data_uri
from glimpse.images import IMAGE_SUFFIXES, MAX_PIXELS, ImageLoadError, load_image

CITATION = (
    'Sarıtaş, Dayan, Shen & Nath, "Complexity in Complexity: Understanding Visual Complexity Through Structure, '
    'Color, and Surprise", arXiv:2501.15890 (2025)'
)
BATCH_KEY = "complexity_batch"
FIT_KEY = "complexity_fit"

#: One sentence per feature, shown next to its value.
EXPLAIN: dict[str, str] = {
    "MSG": "Multi-Scale Sobel Gradient: mean Sobel gradient magnitude of the [0, 1] image at scales 1, ½, ¼, ⅛, "
    "weighted 0.4/0.3/0.2/0.1. High when there are many strong edges and fine texture.",
    "MUC": "Multi-Scale Unique Colour: how many distinct colours remain when each channel keeps b bits, counted on "
    "the image at the same four scales and weighted alike. MUC4 enters the paper's models.",
    "edge_density": "Canny edge density: fraction of pixels on Canny edges (thresholds 0.67× and 1.33× the median "
    "of the blurred grey image), the paper's classic baseline.",
    "standin": "Offline STAND-INS for the paper's segment counts (SAM masks, FC-CLIP classes): scikit-image "
    "Felzenszwalb segments and merged SLIC regions. Not the paper's features; its weights do not apply to them.",
}


# ------------------------------------------------------------------------------------------- services
@st.cache_data(max_entries=16, show_spinner="Measuring complexity…", hash_funcs=BY_DIGEST)
def single(image: ImageChoice, standins: bool) -> ComplexityFeatures:
    """Features of the picked image (keyed by its digest)."""
    return complexity_batch([image.pixels], standins=tuple(STANDINS) if standins else ())[0]


@st.cache_data(max_entries=32, show_spinner="Drawing the complexity maps…", hash_funcs=BY_DIGEST)
def maps(image: ImageChoice, bits: int, window: int) -> ComplexityMaps:
    return complexity_maps(image.pixels, bits=bits, window=window)


def thumbnail_url(pixels: np.ndarray, side: int = 64) -> str:
    """A small JPEG data URL for st.column_config.ImageColumn."""
    img = Image.fromarray(pixels)
    img.thumbnail((side, side))
    return data_uri(np.asarray(img), fmt="jpeg")


@st.cache_data(max_entries=1024, show_spinner=False, hash_funcs=BY_UPLOAD)
def score_upload(upload: Upload, standins: bool) -> tuple[dict[str, float], str]:
    """(feature record, thumbnail URL) of one uploaded image; ImageLoadError propagates."""
    pixels = load_image(upload.data, max_pixels=MAX_PIXELS, name=upload.name)
    feats = complexity_batch([pixels], standins=tuple(STANDINS) if standins else (), names=[upload.name])[0]
    return feats.record(), thumbnail_url(pixels)


def score_uploads(uploads: list[Upload], standins: bool, progress) -> tuple[pd.DataFrame, list[str]]:
    """Score every upload (cached per image), reporting ``progress(fraction, text)``; bad files are listed."""
    rows, errors = [], []
    for i, up in enumerate(uploads):
        try:
            record, thumb = score_upload(up, standins)
        except (ImageLoadError, ValueError) as err:  # ValueError: the image cannot be scored (too small)
            errors.append(skip_reason(up.name, err))
        else:
            rows.append({"thumbnail": thumb, "image_id": up.name, **record})
        progress((i + 1) / len(uploads), f"Scored {i + 1} of {len(uploads)}: {up.name}")
    return pd.DataFrame(rows), errors


def skip_reason(name: str, err: Exception) -> str:
    """Why a file was skipped, naming the file once: the reading and scoring errors already name the file they
    were given (``load_image(name=...)``, ``complexity_batch(names=...)``), where the page used to put the name in
    front of an internal index ("photo.png: images[0]: needs at least 8x8 pixels…")."""
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    return message if name in message else f"{name}: {message}"


def table_csv(table: pd.DataFrame) -> bytes:
    """The batch table as CSV (no thumbnails), ready to join with ratings for the model tab."""
    return table.drop(columns=["thumbnail"], errors="ignore").to_csv(index=False).encode()


@st.cache_data(max_entries=16, show_spinner="Cross-validating the formulas…")
def fit(source: str, csv: bytes, formulas: tuple[tuple[str, str], ...], repeats: int) -> list[FormulaScore]:
    """The paper's repeated 3-fold OLS for each formula on one table (``source`` names it)."""
    table = prepare(csv, name=source)
    return cross_validate(table, dict(formulas), repeats=repeats, dataset=source)


def shipped() -> dict[str, bytes]:
    """The paper's tables shipped with glimpse, by dataset name; a warning and none when they are missing."""
    try:
        return {name: path.read_bytes() for name, path in shipped_tables().items()}
    except FileNotFoundError as err:
        st.warning(f"{err}. You can still upload your own ratings table.")
        return {}


def repeats_for(source: str) -> int:
    return default_repeats(source)


# ------------------------------------------------------------------------------------------- views
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


def headline_formulas() -> dict[str, str]:
    return dict(HEADLINE_FORMULAS)


# ------------------------------------------------------------------------------------------- the page's tabs
def single_image_tab() -> None:
    """One image: its features, the per-scale breakdown and the maps of where the complexity is."""
    left, right = st.columns([1, 2])
    with left:
        image = image_picker(key="complexity")
        standins = st.toggle(
            "Segment-count stand-ins", key="cx_standins", help=EXPLAIN["standin"] + " Adds about a second."
        )
    if image is None:
        st.info("Pick a sample image or upload one to begin.")
    else:
        try:
            feats = single(image, standins)
        except ValueError as err:
            st.error(f"{err}. Pick a larger image (at least 8×8 pixels).")
            feats = None
        if feats is not None:
            with right:
                feature_panel(feats)

            @st.fragment
            def breakdown() -> None:
                st.subheader("Per scale")
                bits = st.select_slider("MUC bits per channel", options=list(BITS), value=4, key="cx_bits")
                g, c = per_scale_figures(feats, bits)
                a, b = st.columns(2)
                a.plotly_chart(g, width="stretch", key="cx_msg_scales")
                b.plotly_chart(c, width="stretch", key="cx_muc_scales")

                st.subheader("Where is the complexity?")
                c1, c2, c3, c4 = st.columns([1.6, 1, 1, 1])
                kind = c1.radio(
                    "Map",
                    ["gradient", "colour", "edges"],
                    horizontal=True,
                    key="cx_map_kind",
                    help="gradient: Sobel magnitude; colour: distinct colours per tile; edges: the Canny map",
                )
                window = c2.select_slider("Colour tile (px)", [4, 8, 16, 32], value=8, key="cx_window")
                overlay = c3.toggle("Over the image", value=False, key="cx_overlay")
                colorscale = c4.selectbox("Colour scale", SEQUENTIAL_MAPS, key="cx_cmap")
                m = maps(image, bits, window)
                backdrop = image.pixels if overlay else None
                if kind == "edges":
                    st.plotly_chart(map_figure(m, kind, 0, backdrop, colorscale), width="stretch", key="cx_edges")
                else:
                    cols = st.columns(2)
                    for i in range(len(SCALES)):
                        fig = map_figure(m, kind, i, backdrop, colorscale)
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
    with st.form("cx_batch_form", border=False):
        files = st.file_uploader(
            f"Images or .zip archives (each file at most {UPLOAD_MB} MB, each image at most "
            f"{MAX_PIXELS / 1e6:.0f} megapixels)",
            accept_multiple_files=True,
            type=[s.lstrip(".") for s in IMAGE_SUFFIXES] + ["zip"],
            key="cx_batch_files",
        )
        batch_standins = st.checkbox("Add segment-count stand-ins (slower)", key="cx_batch_standins")
        go_batch = st.form_submit_button("Score images", type="primary", icon=":material/play_arrow:")
    if go_batch:
        if not files:
            st.warning("Add at least one image or zip first.")
        else:
            uploads, skipped = expand_uploads(files)
            with jobs.bar("Scoring") as progress:
                table, errors = score_uploads(uploads, batch_standins, progress)
            session_results.put(BATCH_KEY, (table, skipped + errors))

    from components.batch_ui import dataset_runner
    from glimpse.batch import ComplexityTask

    dataset_runner("complexity", lambda out, threads: ComplexityTask(threads=threads), key="cx_dataset")

    @st.fragment
    def batch_results() -> None:
        stored = session_results.get(BATCH_KEY)
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
        st.download_button(
            "Download CSV", table_csv(table), file_name="complexity.csv", mime="text/csv", key="cx_batch_csv"
        )
        numeric = [c for c in table.columns if c not in ("thumbnail", "image_id")]
        a, b = st.columns(2)
        x = a.selectbox("x", numeric, index=0, key="cx_scatter_x")
        y = b.selectbox("y", numeric, index=min(4, len(numeric) - 1), key="cx_scatter_y")
        st.plotly_chart(scatter_figure(table, x, y), width="stretch", key="cx_scatter")

    batch_results()


def paper_model_tab() -> None:
    """The paper's cross-validated OLS formulas on its tables or the user's CSV."""
    st.markdown(
        "Ordinary least squares on human ratings with the paper's protocol: 3-fold cross-validation repeated M times "
        "(seeds 1…M), scored by the mean Spearman ρ on the test folds. Base regressors: √(SAM masks) and "
        "√(FC-CLIP classes) from the shipped tables; add MSG, MUC4 and the Gemini surprise score."
    )
    tables = shipped()
    sources = (["Shipped table"] if tables else []) + ["Upload CSV"]
    source = st.radio("Ratings table", sources, horizontal=True, key="cx_fit_source")
    name, csv = None, None
    if source == "Shipped table":
        default = list(tables).index("RSIVL") if "RSIVL" in tables else 0
        name = st.selectbox("Dataset", list(tables), index=default, key="cx_fit_dataset")
        csv = tables[name]
    else:
        up = st.file_uploader(
            "CSV with image_id, complexity (rating) and feature columns", type=["csv"], key="cx_fit_upload"
        )
        if up is not None:
            name, csv = up.name.rsplit(".", 1)[0], up.getvalue()
    with st.form("cx_fit_form", border=False):
        headline = headline_formulas()
        chosen = st.multiselect("Formulas", list(headline), default=list(headline), key="cx_fit_formulas")
        custom = st.text_input(
            "Extra formula (optional)",
            placeholder="complexity ~ MSG + MUC4",
            key="cx_fit_custom",
            help="Any statsmodels formula over the table's columns; a right-hand side alone is fine.",
        )
        repeats = st.number_input(
            "Repeats M (0 = the paper's for this dataset)", min_value=0, max_value=50, value=0, key="cx_fit_repeats"
        )
        go_fit = st.form_submit_button("Fit", type="primary", icon=":material/play_arrow:")
    if go_fit:
        formulas = {k: headline[k] for k in chosen}
        if custom.strip():
            formulas[custom.strip()] = custom.strip()
        if csv is None:
            st.warning("Upload a CSV first.")
        elif not formulas:
            st.warning("Choose at least one formula.")
        else:
            m = int(repeats) or repeats_for(name)
            try:
                session_results.put(FIT_KEY, (name, m, fit(name, csv, tuple(formulas.items()), m)))
            except ValueError as err:
                st.error(f"{err}. Pick formulas whose columns the table has, or add the columns to your CSV.")

    @st.fragment
    def fit_results() -> None:
        stored = session_results.get(FIT_KEY)
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
            pd.DataFrame(fit_table(results)).to_csv(index=False).encode(),
            file_name=f"{dataset}-fit.csv",
            mime="text/csv",
            key="cx_fit_csv",
        )

    fit_results()
