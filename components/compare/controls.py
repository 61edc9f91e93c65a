"""The Compare lens's widgets: the bundle import, the run's form (a frozen :class:`CompareRequest` when Compute is
pressed) and the display controls, which re-slice the stored run (their values are what a bundle records)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st

from components import loaders
from components import probe as probe_widgets
from components.compare import COLORSCALES, NORMS, SOURCES, state
from components.image_input import ImageChoice, image_picker
from components.views import ONE_MATCH_ON_ENTER
from glimpse.compare.run import DEFAULT_METHODS, CompareSpec
from glimpse.export import BundleError, RunRecord, read_bundle
from glimpse.saliency import get_method, list_methods

initial = state.initial


@dataclass(frozen=True)
class CompareRequest:
    """What Compute was pressed with: the classifier, the device, the run's spec and the image (None: the spec
    generates one from its prompt)."""

    model_id: str
    device: str
    spec: CompareSpec
    image: ImageChoice | None


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
        if state.imported(digest):
            return
        try:
            record = read_bundle(data)
            if "evaluation" in record.params:  # a bundle of the Evaluate page: its report is the way to read it
                benchmark = record.params["evaluation"].get("benchmark", "evaluation")
                st.info(
                    f"{up.name} holds Evaluate results ({benchmark}), not a Compare run: open its report.html, "
                    "or read it with glimpse.export.read_bundle."
                )
                state.mark_imported(digest)
                return
            spec = CompareSpec.from_params(record.params)
        except (BundleError, ValueError, TypeError) as err:
            st.error(f"Could not import {up.name}: {err}. Only bundles written by Glimpse can be imported.")
            return
        state.restore(record, spec, data, digest)
        st.success(f"Restored the run of {record.image_name} from {up.name} (created {record.created}).")


def request_form(model_id: str, device: str) -> CompareRequest | None:
    """The run's controls; the request when Compute was pressed (and an image or a prompt is given), else None."""
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
                **initial("cmp_prompt", value="a red circle to the left of a blue square"),
                help="Words the embedded model knows: colours red/green/blue/yellow, shapes circle/square/triangle, "
                "relations to the left of / right of / above / below.",
            )
            gen_seed = c2.number_input(
                "Generation seed", 0, 2**31 - 1, key="cmp_gen_seed", **initial("cmp_gen_seed", value=0)
            )
            steps = c3.slider("Steps", 1, 50, key="cmp_steps", **initial("cmp_steps", value=25))
        c1, c2, c3 = st.columns([3, 2, 2])
        chosen = c1.multiselect(
            "Saliency methods",
            methods,
            **initial("cmp_methods", default=[m for m in DEFAULT_METHODS if m in methods]),
            format_func=lambda n: get_method(n).label,
            key="cmp_methods",
            help="Gradient and CAM methods share one forward+backward pass; perturbation methods are slower.",
            **ONE_MATCH_ON_ENTER,
        )
        target = c2.text_input("Class to explain", key="cmp_target", help="Name or index; blank = top-1 class")
        layer = c3.selectbox("CAM layer", layers, key="cmp_layer") if layers else None
        c1, c2, c3, c4 = st.columns(4)
        seed = c1.number_input("Seed", 0, 2**31 - 1, key="cmp_seed", **initial("cmp_seed", value=0))
        k = c2.slider(
            "Top-k %", 1.0, 50.0, step=1.0, key="cmp_k", help="Region for IoU, pointing game, complexity",
            **initial("cmp_k", value=20.0),
        )  # fmt: skip
        bits = c3.slider("MUC bits", 1, 8, key="cmp_bits", **initial("cmp_bits", value=4))
        absolute = c4.checkbox(
            "Compare |map|",
            key="cmp_absolute",
            help="Both signs of a gradient count",
            **initial("cmp_absolute", value=True),
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
    return CompareRequest(model_id, device, spec, None if spec.prompt is not None else choice)


def display_controls(record: RunRecord) -> dict:
    """The panels to show, values, colour scale, opacity and columns; returns every display setting (as a bundle
    records them). The panel picker is a wrapping row of pills (a multiselect keeps its chips on one scrolling
    line and cut them)."""
    state.ensure_selection(record)  # before its widgets are drawn
    st.pills("Panels", list(record.map_names), selection_mode="multi", key="cmp_panels")
    c2, c3, c4, c5 = st.columns([3, 2, 2, 1])
    c2.radio("Values", NORMS, key="cmp_norm", horizontal=True,
             help="A display choice; raw signed maps are kept and exported")  # fmt: skip
    c3.selectbox("Colour scale", COLORSCALES, key="cmp_colorscale", help="Signed raw maps use RdBu around 0")
    c4.slider("Overlay opacity", 0.0, 1.0, step=0.05, key="cmp_opacity", **initial("cmp_opacity", value=0.6))
    c5.number_input("Columns", 1, 6, key="cmp_columns", **initial("cmp_columns", value=4))
    return state.display_state()


def metric_picker(metrics: dict[str, str]) -> str:
    return st.radio("Metric", list(metrics), format_func=metrics.get, horizontal=True, key="cmp_metric")


def pair_pickers(words: list[str], saliency: list[str], c1, c2) -> tuple[str, str]:
    """The prompt word and the classifier map shown side by side (in columns ``c1`` and ``c2``)."""
    return c1.selectbox("Word", words, key="cmp_word"), c2.selectbox("Classifier map", saliency, key="cmp_partner")


def prepare_pressed() -> bool:
    return st.button(
        "Prepare bundle", key="cmp_prepare", help="Zip: inputs, parameters, raw maps, overlays, CSV, report"
    )


# ------------------------------------------------------------------------------------------ the probed pixel
PROBE_X, PROBE_Y = "cmp_probe_x", "cmp_probe_y"
PROBE = probe_widgets.Keys(PROBE_X, PROBE_Y)


def probe_inputs(record: RunRecord) -> tuple[int, int] | None:
    """The probed pixel of the image (x, y), or None before one is chosen (a click on any panel, or typed)."""
    return probe_widgets.pixel_inputs(record.image.shape, PROBE, "every map")
