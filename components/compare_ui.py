"""The Compare page's Streamlit layer: controls, the cached run service, import, and the display state.

Everything drawn comes from one :class:`glimpse.export.RunRecord` in st.session_state — computed here or
imported from a bundle — so an imported bundle shows exactly its own maps and numbers. The views that draw it
(the locked grid, agreement, export) are in :mod:`components.compare_views`.
"""

from __future__ import annotations

import hashlib
import json

import streamlit as st

from components import jobs, loaders, session_results
from components.image_input import BY_DIGEST, ImageChoice, image_picker
from components.views import ONE_MATCH_ON_ENTER
from glimpse.compare.run import DEFAULT_METHODS, DISPLAY, CompareSpec, run_compare
from glimpse.export import BundleError, RunRecord, read_bundle
from glimpse.saliency import get_method, list_methods
from models.registry import ModelLoadError

RUN_KEY = "compare_run"
EXPORT_KEY = "compare_export"  # (token, bytes) of the last prepared bundle
IMPORTED_KEY = "compare_imported"  # digest of the last imported upload
SELECTION_KEY = "compare_selection"  # the run-specific choices and the run they belong to (see select_for)
SOURCES = ("Image", "Generate from a prompt")
NORMS = ("raw", "|map|", "min-max per panel")
COLORSCALES = ("Viridis", "Inferno", "Jet", "Greys", "RdBu_r")
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
#: Display widgets whose options are the run's map names: their values belong to one run (see ``select_for``).
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
        select_for(record, panels=display.get("panels"), word=display.get("word"), partner=display.get("partner"))
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
            continue  # set by select_for, against the imported run's maps
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


# -------------------------------------------------------------------------------------- display state
def initial(key: str, **default) -> dict:
    """The widget's default, unless session state already holds its value (set by an import, or by the user):
    passing both makes Streamlit warn and is ambiguous."""
    return {} if key in st.session_state else default


def select_for(record: RunRecord, *, panels=None, word=None, partner=None) -> None:
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
    token = run_token(record)
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
    remember(record)


def remember(record: RunRecord) -> None:
    """Keep the run-specific widgets' current values under ``SELECTION_KEY``."""
    state = st.session_state
    state[SELECTION_KEY] = {
        "token": run_token(record),
        "names": tuple(record.map_names),
        "panels": tuple(state.get("cmp_panels") or ()),
        "word": state.get("cmp_word"),
        "partner": state.get("cmp_partner"),
    }


def display_state() -> dict:
    return {name: st.session_state.get(key, default) for key, (name, default) in _DISPLAY_WIDGETS.items()}


def run_token(record: RunRecord) -> str:
    return hashlib.sha1(f"{record.created}|{record.image_name}|{record.map_names}".encode()).hexdigest()


def _default_word(words) -> int:
    """A content word first (a shape, then a colour), not an article."""
    for preferred in ("circle", "square", "triangle"):
        for i, e in enumerate(words):
            if e.meta.get("word") == preferred:
                return i
    return 0
