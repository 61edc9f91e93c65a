"""Visual complexity: the features of Sarıtaş et al. (2025), where they come from, batch scoring, the paper's model."""

import pandas as pd
import streamlit as st

from components import complexity_ui as ui
from components.image_input import image_picker
from glimpse.complexity import BITS, SCALES

st.title("Visual complexity")
st.caption(
    f"How busy is a picture? Structure (gradients, edges), colour and segment counts, exactly as in {ui.CITATION}. "
    "Values equal the paper's reference code, so they plug into its published regressions."
)

single_tab, batch_tab, model_tab = st.tabs(["Single image", "Batch", "The paper's model"])

# ------------------------------------------------------------------------------------------- single image
with single_tab:
    left, right = st.columns([1, 2])
    with left:
        image = image_picker(key="complexity")
        standins = st.toggle(
            "Segment-count stand-ins", key="cx_standins", help=ui.EXPLAIN["standin"] + " Adds about a second."
        )
    if image is None:
        st.info("Pick a sample image or upload one to begin.")
    else:
        try:
            feats = ui.single(image, standins)
        except ValueError as err:
            st.error(f"{err}. Pick a larger image (at least 8×8 pixels).")
            feats = None
        if feats is not None:
            with right:
                ui.feature_panel(feats)

            @st.fragment
            def breakdown() -> None:
                st.subheader("Per scale")
                bits = st.select_slider("MUC bits per channel", options=list(BITS), value=4, key="cx_bits")
                g, c = ui.per_scale_figures(feats, bits)
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
                colorscale = c4.selectbox("Colour scale", ["Viridis", "Inferno", "Magma", "Greys"], key="cx_cmap")
                m = ui.maps(image, bits, window)
                backdrop = image.pixels if overlay else None
                if kind == "edges":
                    st.plotly_chart(ui.map_figure(m, kind, 0, backdrop, colorscale), width="stretch", key="cx_edges")
                else:
                    cols = st.columns(2)
                    for i in range(len(SCALES)):
                        fig = ui.map_figure(m, kind, i, backdrop, colorscale)
                        cols[i % 2].plotly_chart(fig, width="stretch", key=f"cx_map_{i}")
                st.caption(
                    "Raw values, one colour bar per map. The mean of each gradient map is that scale's MSG term; "
                    "colour maps count distinct colours inside each tile of the area-resized image."
                )

            breakdown()

# ------------------------------------------------------------------------------------------- batch
with batch_tab:
    st.markdown(
        "Upload many images or a zip. Each image gets MSG, MUC1…MUC8 and the edge density; the CSV joins with "
        "your ratings for the model tab (add a `complexity` column)."
    )
    with st.form("cx_batch_form", border=False):
        files = st.file_uploader(
            "Images or .zip archives",
            accept_multiple_files=True,
            type=[s.lstrip(".") for s in ui.IMAGE_SUFFIXES] + ["zip"],
            key="cx_batch_files",
        )
        batch_standins = st.checkbox("Add segment-count stand-ins (slower)", key="cx_batch_standins")
        go_batch = st.form_submit_button("Score images", type="primary", icon=":material/play_arrow:")
    if go_batch:
        if not files:
            st.warning("Add at least one image or zip first.")
        else:
            uploads, skipped = ui.expand_uploads(files)
            bar = st.progress(0.0, text="Scoring…")
            table, errors = ui.score_uploads(uploads, batch_standins, lambda f, t: bar.progress(f, text=t))
            st.session_state[ui.BATCH_KEY] = (table, skipped + errors)

    @st.fragment
    def batch_results() -> None:
        stored = st.session_state.get(ui.BATCH_KEY)
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
            "Download CSV", ui.table_csv(table), file_name="complexity.csv", mime="text/csv", key="cx_batch_csv"
        )
        numeric = [c for c in table.columns if c not in ("thumbnail", "image_id")]
        a, b = st.columns(2)
        x = a.selectbox("x", numeric, index=0, key="cx_scatter_x")
        y = b.selectbox("y", numeric, index=min(4, len(numeric) - 1), key="cx_scatter_y")
        st.plotly_chart(ui.scatter_figure(table, x, y), width="stretch", key="cx_scatter")

    batch_results()

# ------------------------------------------------------------------------------------------- the paper's model
with model_tab:
    st.markdown(
        "Ordinary least squares on human ratings with the paper's protocol: 3-fold cross-validation repeated M times "
        "(seeds 1…M), scored by the mean Spearman ρ on the test folds. Base regressors: √(SAM masks) and "
        "√(FC-CLIP classes) from the shipped tables; add MSG, MUC4 and the Gemini surprise score."
    )
    shipped = ui.shipped()
    sources = (["Shipped table"] if shipped else []) + ["Upload CSV"]
    source = st.radio("Ratings table", sources, horizontal=True, key="cx_fit_source")
    name, csv = None, None
    if source == "Shipped table":
        default = list(shipped).index("RSIVL") if "RSIVL" in shipped else 0
        name = st.selectbox("Dataset", list(shipped), index=default, key="cx_fit_dataset")
        csv = shipped[name]
    else:
        up = st.file_uploader(
            "CSV with image_id, complexity (rating) and feature columns", type=["csv"], key="cx_fit_upload"
        )
        if up is not None:
            name, csv = up.name.rsplit(".", 1)[0], up.getvalue()
        if not shipped:
            st.caption("The shipped paper tables were not found (../shared/data/complexity-in-complexity).")
    with st.form("cx_fit_form", border=False):
        headline = ui.headline_formulas()
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
            m = int(repeats) or ui.repeats_for(name)
            try:
                st.session_state[ui.FIT_KEY] = (name, m, ui.fit(name, csv, tuple(formulas.items()), m))
            except ValueError as err:
                st.error(f"{err}. Pick formulas whose columns the table has, or add the columns to your CSV.")

    @st.fragment
    def fit_results() -> None:
        stored = st.session_state.get(ui.FIT_KEY)
        if stored is None:
            return
        dataset, m, results = stored
        st.markdown(f"**{dataset}** · {results[0].n} images · M = {m} repeats × 3 folds")
        st.dataframe(ui.fit_table(results), hide_index=True, width="stretch", key="cx_fit_table")
        st.plotly_chart(ui.fit_bar(results), width="stretch", key="cx_fit_bar")
        pick = st.selectbox("Predicted vs rated for", [r.name for r in results], key="cx_fit_pick")
        chosen_result = next(r for r in results if r.name == pick)
        st.plotly_chart(ui.predicted_figure(chosen_result), width="stretch", key="cx_fit_scatter")
        st.download_button(
            "Download scores (CSV)",
            pd.DataFrame(ui.fit_table(results)).to_csv(index=False).encode(),
            file_name=f"{dataset}-fit.csv",
            mime="text/csv",
            key="cx_fit_csv",
        )

    fit_results()
