"""The Compare page's Streamlit layer: controls, the cached run service, the locked grid, import/export.

Everything drawn comes from one :class:`glimpse.export.RunRecord` in st.session_state — computed here or
imported from a bundle — so an imported bundle shows exactly its own maps and numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components import jobs, loaders, session_results
from components.image_input import BY_DIGEST, ImageChoice, image_picker
from components.views import ONE_MATCH_ON_ENTER, heatmap_figure
from glimpse.compare.run import (
    AGREEMENT,
    DEFAULT_METHODS,
    DISPLAY,
    PREDICTIONS,
    REGION,
    CompareSpec,
    matrix_from_rows,
    run_compare,
)
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
from glimpse.export import BundleError, RunRecord, bundle_bytes, read_bundle
from glimpse.saliency import get_method, list_methods
from models.registry import ModelLoadError

RUN_KEY = "compare_run"
EXPORT_KEY = "compare_export"  # (token, bytes) of the last prepared bundle
IMPORTED_KEY = "compare_imported"  # digest of the last imported upload
SELECTION_KEY = "compare_selection"  # the run-specific choices and the run they belong to (see _select_for)
SOURCES = ("Image", "Generate from a prompt")
NORMS = ("raw", "|map|", "min-max per panel")
COLORSCALES = ("Viridis", "Inferno", "Jet", "Greys", "RdBu_r")
METRICS = {"spearman": "Spearman ρ", "iou": "top-k % IoU", "pointing": "pointing game (row's peak in column's region)"}
DISPLAY_SIDE = 160  # every panel is drawn on the same grid: hover (x, y) names the same pixel in each
CITATIONS = (
    "Spearman rank correlation as in Adebayo et al., Sanity Checks for Saliency Maps (NeurIPS 2018); pointing "
    "game after Zhang et al., Top-down Neural Attention by Excitation Backprop (ECCV 2016); MSG and MUC from "
    "Sarıtaş et al., Complexity in Complexity (arXiv 2501.15890); word maps by DAAM (Tang et al., ACL 2023)."
)
#: display widget key -> (params["display"] key, default)
_DISPLAY_WIDGETS = {
    "cmp_panels": ("panels", None),
    "cmp_norm": ("norm", "raw"),
    "cmp_colorscale": ("colorscale", "Viridis"),
    "cmp_opacity": ("opacity", 0.6),
    "cmp_columns": ("columns", 4),
    "cmp_metric": ("metric", "spearman"),
    "cmp_word": ("word", None),
    "cmp_partner": ("partner", None),
}
#: Display widgets whose options are the run's map names: their values belong to one run (see ``_select_for``).
_RUN_WIDGETS = ("cmp_panels", "cmp_word", "cmp_partner")


# ------------------------------------------------------------------------------------------- services
@st.cache_data(max_entries=8, show_spinner=False, hash_funcs=BY_DIGEST)
def compare(model_id: str, device: str, image: ImageChoice | None, spec_json: str) -> RunRecord:
    """One Compare run, keyed by (model, device, the image's digest, canonical spec JSON); ``image`` is None when
    the spec generates one from a prompt."""
    spec = CompareSpec.from_params(json.loads(spec_json))
    classifier = loaders.classifier(model_id, device)
    pipeline = None
    if spec.prompt is not None:
        pipeline = loaders.pipeline(spec.t2i_model, device)
    pixels, name = (None, "generated") if image is None else (image.pixels, image.name)
    with st.spinner("Running the three lenses…"):
        return run_compare(classifier, pixels, spec, image_name=name, pipeline=pipeline)


def stored() -> RunRecord | None:
    return session_results.get(RUN_KEY)


# ------------------------------------------------------------------------------------------- controls
def import_box() -> None:
    """Upload a bundle: on a new file, restore the run and every control it records (before they are drawn)."""
    with st.expander("Import a run bundle", expanded=False):
        up = st.file_uploader(
            "Bundle (.zip) exported by Glimpse or `python -m glimpse report`", type=["zip"], key="cmp_import"
        )
        if up is None:
            return
        data = up.getvalue()
        digest = hashlib.sha1(data).hexdigest()
        if st.session_state.get(IMPORTED_KEY) == digest:
            return
        try:
            record = read_bundle(data)
            if "evaluation" in record.params:  # a bundle of the Evaluate page: its report is the way to read it
                benchmark = record.params["evaluation"].get("benchmark", "evaluation")
                st.info(
                    f"{up.name} holds Evaluate results ({benchmark}), not a Compare run: open its report.html, "
                    "or read it with glimpse.export.read_bundle."
                )
                st.session_state[IMPORTED_KEY] = digest
                return
            spec = CompareSpec.from_params(record.params)
        except (BundleError, ValueError, TypeError) as err:
            st.error(f"Could not import {up.name}: {err}. Only bundles written by Glimpse can be imported.")
            return
        st.session_state[IMPORTED_KEY] = digest
        session_results.put(RUN_KEY, record)
        session_results.put(EXPORT_KEY, ("imported", data))
        display = dict(record.params.get(DISPLAY) or {})
        _restore_controls(spec, display)
        _select_for(record, panels=display.get("panels"), word=display.get("word"), partner=display.get("partner"))
        st.success(f"Restored the run of {record.image_name} from {up.name} (created {record.created}).")


def _restore_controls(spec: CompareSpec, display: dict) -> None:
    state = st.session_state
    known = {m.name for m in list_methods()}
    state["cmp_mode"] = SOURCES[1] if spec.prompt else SOURCES[0]
    state["cmp_methods"] = [m for m in spec.methods if m in known]
    state["cmp_target"] = "" if spec.target is None else str(spec.target)
    if spec.layer is not None:
        state["cmp_layer"] = spec.layer
    state["cmp_seed"] = int(spec.seed)
    state["cmp_k"] = float(spec.k)
    state["cmp_absolute"] = bool(spec.absolute)
    state["cmp_bits"] = int(spec.bits)
    if spec.prompt:
        state["cmp_prompt"] = spec.prompt
        state["cmp_gen_seed"] = int(spec.gen_seed)
        if spec.steps is not None:
            state["cmp_steps"] = int(spec.steps)
    for key, (name, _default) in _DISPLAY_WIDGETS.items():
        if key in _RUN_WIDGETS:
            continue  # set by _select_for, against the imported run's maps
        if display.get(name) is not None:
            state[key] = display[name]
        else:
            state.pop(key, None)


def controls(model_id: str, device: str) -> tuple[CompareSpec, ImageChoice | None] | None:
    """The run's controls; (spec, the picked image or None for a prompt) when Compute was pressed, else None."""
    classifier = loaders.classifier(model_id, device)
    source = st.radio("Source", SOURCES, horizontal=True, key="cmp_mode")
    choice = None
    if source == SOURCES[0]:
        choice = image_picker(key="cmp", show=False)
    methods = [m.name for m in list_methods()]
    layers = list(classifier.target_layers)
    if st.session_state.get("cmp_layer") not in layers:
        st.session_state.pop("cmp_layer", None)  # e.g. a bundle made with another classifier
    with st.form("compare_form"):
        prompt, gen_seed, steps = None, 0, None
        if source == SOURCES[1]:
            c1, c2, c3 = st.columns([4, 1, 1])
            prompt = c1.text_input(
                "Prompt (embedded shapes model)",
                key="cmp_prompt",
                **_v("cmp_prompt", value="a red circle to the left of a blue square"),
                help="Words the embedded model knows: colours red/green/blue/yellow, shapes circle/square/triangle, "
                "relations to the left of / right of / above / below.",
            )
            gen_seed = c2.number_input(
                "Generation seed", 0, 2**31 - 1, key="cmp_gen_seed", **_v("cmp_gen_seed", value=0)
            )
            steps = c3.slider("Steps", 1, 50, key="cmp_steps", **_v("cmp_steps", value=25))
        c1, c2, c3 = st.columns([3, 2, 2])
        chosen = c1.multiselect(
            "Saliency methods",
            methods,
            **_v("cmp_methods", default=[m for m in DEFAULT_METHODS if m in methods]),
            format_func=lambda n: get_method(n).label,
            key="cmp_methods",
            help="Gradient and CAM methods share one forward+backward pass; perturbation methods are slower.",
            **ONE_MATCH_ON_ENTER,
        )
        target = c2.text_input("Class to explain", key="cmp_target", help="Name or index; blank = top-1 class")
        layer = c3.selectbox("CAM layer", layers, key="cmp_layer") if layers else None
        c1, c2, c3, c4 = st.columns(4)
        seed = c1.number_input("Seed", 0, 2**31 - 1, key="cmp_seed", **_v("cmp_seed", value=0))
        k = c2.slider(
            "Top-k %", 1.0, 50.0, step=1.0, key="cmp_k", help="Region for IoU, pointing game, complexity",
            **_v("cmp_k", value=20.0),
        )  # fmt: skip
        bits = c3.slider("MUC bits", 1, 8, key="cmp_bits", **_v("cmp_bits", value=4))
        absolute = c4.checkbox(
            "Compare |map|", key="cmp_absolute", help="Both signs of a gradient count", **_v("cmp_absolute", value=True)
        )
        pressed = st.form_submit_button("Compute", type="primary")
    if not pressed:
        return None
    if source == SOURCES[0] and choice is None:
        st.error("Choose or upload an image first.")
        return None
    try:
        spec = CompareSpec(
            methods=tuple(chosen),
            target=target.strip() or None,
            layer=layer,
            seed=int(seed),
            k=float(k),
            absolute=bool(absolute),
            bits=int(bits),
            prompt=prompt.strip() if prompt is not None else None,
            gen_seed=int(gen_seed),
            steps=None if steps is None else int(steps),
        )
    except ValueError as err:
        st.error(f"{err}.")
        return None
    return spec, None if spec.prompt is not None else choice


def run(model_id: str, device: str, spec: CompareSpec, image: ImageChoice | None) -> RunRecord | None:
    """Compute (or fetch) the run and store it; st.error with what to do on a user error."""
    record = None
    try:
        with jobs.heavy("compare run", cancel_message="Compare run cancelled; the previous run is kept."):
            record = compare(model_id, device, image, spec.to_json())
    except ModelLoadError as err:
        st.error(f"Could not load a model: {err}")
        return None
    except ValueError as err:
        st.error(f"{err}. Change the setting named at the start of this message and press Compute again.")
        return None
    if record is None:
        return None
    session_results.put(RUN_KEY, record)
    session_results.pop(EXPORT_KEY)
    return record


# ------------------------------------------------------------------------------------------- views
def _v(key: str, **default) -> dict:
    """The widget's default, unless session state already holds its value (set by an import, or by the user):
    passing both makes Streamlit warn and is ambiguous."""
    return {} if key in st.session_state else default


def _select_for(record: RunRecord, *, panels=None, word=None, partner=None) -> None:
    """Make the run-specific choices (shown panels, word, classifier map) refer to ``record``'s maps.

    Their options are the run's map names, so a value kept from another run is wrong both ways: an image
    run's panel list hides a prompt run's word maps, and a prompt run's word chips outlive it. Values are
    *assigned* (not popped) because only an assignment is sent to the browser, which otherwise keeps showing
    the widget's old value. ``panels=None`` keeps hiding what the user hid in the previous run and shows
    every other map of this one; given values (an imported bundle's) are kept where they name this run's maps.

    The choices are also kept under ``SELECTION_KEY`` (plain state, which Streamlit keeps when the user visits
    another page, unlike widget state), so coming back to the page restores them.
    """
    state = st.session_state
    names = list(record.map_names)
    token = _token(record)
    previous = state.get(SELECTION_KEY) or {}
    if previous.get("token") == token:  # the same run, its widget state dropped by a page switch
        panels = previous["panels"] if panels is None else panels
        word = previous.get("word") if word is None else word
        partner = previous.get("partner") if partner is None else partner
    if panels is None:
        hidden = set(previous.get("names", ())) - set(previous.get("panels", ()))
        panels = [n for n in names if n not in hidden]
    else:
        panels = [n for n in panels if n in names]
    state["cmp_panels"] = panels
    words = [e for e in record.maps if e.kind == "attention"]
    sal_names = [e.name for e in record.maps if e.kind == "saliency"]
    if words and sal_names:
        word_names = [e.name for e in words]
        state["cmp_word"] = word if word in word_names else word_names[_default_word(words)]
        state["cmp_partner"] = partner if partner in sal_names else sal_names[0]
    else:
        state.pop("cmp_word", None)  # not drawn for this run
        state.pop("cmp_partner", None)
    _remember(record)


def _remember(record: RunRecord) -> None:
    """Keep the run-specific widgets' current values under ``SELECTION_KEY``."""
    state = st.session_state
    state[SELECTION_KEY] = {
        "token": _token(record),
        "names": tuple(record.map_names),
        "panels": tuple(state.get("cmp_panels") or ()),
        "word": state.get("cmp_word"),
        "partner": state.get("cmp_partner"),
    }


def _display_state() -> dict:
    return {name: st.session_state.get(key, default) for key, (name, default) in _DISPLAY_WIDGETS.items()}


def _token(record: RunRecord) -> str:
    return hashlib.sha1(f"{record.created}|{record.image_name}|{record.map_names}".encode()).hexdigest()


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


def panel(record: RunRecord, name: str, display: dict, grid: tuple[int, int], image_small: np.ndarray) -> go.Figure:
    values, options = _shown(record.map(name).values, display["norm"], display["colorscale"])
    return heatmap_figure(
        resize_map(values, grid),
        image=image_small,
        title=name,
        opacity=float(display["opacity"]),
        colorbar_title="raw" if display["norm"] == "raw" else display["norm"],
        height=260,
        max_side=max(grid),
        **options,
    )


@st.fragment
def results_view() -> None:
    """The locked grid, the agreement matrix, generate→classify→explain, region complexity, export."""
    record = stored()
    if record is None:
        return
    grid = display_size(record.image.shape, DISPLAY_SIDE)
    image_small = resize_image(record.image, grid)
    spec = CompareSpec.from_params(record.params)
    header_view(record)
    display = grid_view(record, grid, image_small)
    agreement_view(record, spec)
    pair_view(record, spec, display, grid, image_small)
    _remember(record)
    region_view(record, spec)
    export_view(record, display)


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


def grid_view(record: RunRecord, grid: tuple[int, int], image_small: np.ndarray) -> dict:
    """Display controls (they re-slice the stored run; nothing is recomputed) and the grid of panels."""
    selection = st.session_state.get(SELECTION_KEY) or {}
    if selection.get("token") != _token(record) or "cmp_panels" not in st.session_state:
        _select_for(record)  # a new run (or widget state dropped by a page switch): before its widgets are drawn
    c1, c2, c3, c4, c5 = st.columns([4, 2, 2, 2, 1])
    chosen = c1.multiselect("Panels", list(record.map_names), key="cmp_panels", **ONE_MATCH_ON_ENTER)
    c2.radio("Values", NORMS, key="cmp_norm", help="A display choice; raw signed maps are kept and exported")
    c3.selectbox("Colour scale", COLORSCALES, key="cmp_colorscale", help="Signed raw maps use RdBu around 0")
    c4.slider("Overlay opacity", 0.0, 1.0, step=0.05, key="cmp_opacity", **_v("cmp_opacity", value=0.6))
    c5.number_input("Columns", 1, 6, key="cmp_columns", **_v("cmp_columns", value=4))
    display = _display_state()

    cols = st.columns(int(display["columns"]))
    cols[0].image(image_small, caption=f"input · {record.image.shape[1]}×{record.image.shape[0]}", width="stretch")
    for i, name in enumerate(chosen, start=1):
        with cols[i % len(cols)]:
            st.plotly_chart(panel(record, name, display, grid, image_small), key=f"cmp_panel_{name}")
    st.caption(
        f"All panels share one {grid[1]}×{grid[0]} grid: hover x, y name the same pixel in every panel. "
        "Saliency maps are at the model input and stretched back to the image's shape; MSG maps at 1/s of it."
    )
    return display


def agreement_view(record: RunRecord, spec: CompareSpec) -> None:
    """How far any two maps agree, as a matrix and a table."""
    names = list(record.map_names)
    st.subheader("Agreement between maps")
    metric = st.radio("Metric", list(METRICS), format_func=METRICS.get, horizontal=True, key="cmp_metric")
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


def pair_view(record: RunRecord, spec: CompareSpec, display: dict, grid, image_small) -> None:
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
    word = c1.selectbox("Word", [e.name for e in words], key="cmp_word")
    partner = c2.selectbox("Classifier map", [e.name for e in saliency], key="cmp_partner")
    c1.plotly_chart(panel(record, word, display, grid, image_small), key="cmp_pair_word")
    c2.plotly_chart(panel(record, partner, display, grid, image_small), key="cmp_pair_sal")
    pair = {(r["map_a"], r["map_b"]): r for r in record.tables.get(AGREEMENT, ())}
    ab, ba = pair.get((word, partner)), pair.get((partner, word))
    if ab and ba:
        iou_col = next(c for c in ab if c.endswith("pct_iou"))
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Spearman ρ", f"{ab['spearman']:.3f}")
        m2.metric(f"Top-{spec.k:g} % IoU", f"{ab[iou_col]:.3f}")
        m3.metric("Word peak in class region", "hit" if ab["pointing_a_in_b"] else "miss")
        m4.metric("Class peak in word region", "hit" if ba["pointing_a_in_b"] else "miss")


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
    token = _token(record) + hashlib.sha1(json.dumps(display, sort_keys=True, default=str).encode()).hexdigest()
    if st.button("Prepare bundle", key="cmp_prepare", help="Zip: inputs, parameters, raw maps, overlays, CSV, report"):
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


def _default_word(words) -> int:
    """A content word first (a shape, then a colour), not an article."""
    for preferred in ("circle", "square", "triangle"):
        for i, e in enumerate(words):
            if e.meta.get("word") == preferred:
                return i
    return 0


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")[:40] or "run"
