"""What a session keeps of the Compare lens: the run (computed as a job, or imported), and the widget state
that belongs to it — the controls a bundle restores, and the run-specific choices (shown panels, word,
classifier map) kept valid for the run on screen and across page switches.

Streamlit drops a widget's state when its page is not drawn and warns when a widget gets both a default and a
session-state value, so the rules here decide, before the widgets are drawn, which value each one starts with.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import streamlit as st

from components import jobs, session_results
from components.compare import EXPORT_KEY, IMPORTED_KEY, RUN_KEY, SELECTION_KEY, SOURCES, services
from glimpse.compare.run import DISPLAY, CompareSpec
from glimpse.export import RunRecord
from glimpse.saliency import list_methods
from models.registry import ModelLoadError

if TYPE_CHECKING:
    from components.compare.controls import CompareRequest

#: display widget key -> (params["display"] key, default)
DISPLAY_WIDGETS = {
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
RUN_WIDGETS = ("cmp_panels", "cmp_word", "cmp_partner")


# ------------------------------------------------------------------------------------------------ the run
def stored() -> RunRecord | None:
    return session_results.get(RUN_KEY)


def run(request: CompareRequest) -> RunRecord | None:
    """Compute (or fetch) the run and store it; st.error with what to do on a user error."""
    record = None
    try:
        with jobs.heavy("compare run", cancel_message="Compare run cancelled; the previous run is kept."):
            record = services.compare(request.model_id, request.device, request.image, request.spec.to_json())
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


def imported(digest: str) -> bool:
    """Whether the upload of this digest was imported already (an upload stays in its widget across reruns)."""
    return st.session_state.get(IMPORTED_KEY) == digest


def mark_imported(digest: str) -> None:
    st.session_state[IMPORTED_KEY] = digest


def restore(record: RunRecord, spec: CompareSpec, data: bytes, digest: str) -> None:
    """Make an imported bundle's run the session's, with every control it records (before they are drawn)."""
    mark_imported(digest)
    session_results.put(RUN_KEY, record)
    session_results.put(EXPORT_KEY, ("imported", data))
    display = dict(record.params.get(DISPLAY) or {})
    _restore_controls(spec, display)
    select_for(record, panels=display.get("panels"), word=display.get("word"), partner=display.get("partner"))


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
    for key, (name, _default) in DISPLAY_WIDGETS.items():
        if key in RUN_WIDGETS:
            continue  # set by select_for, against the imported run's maps
        if display.get(name) is not None:
            state[key] = display[name]
        else:
            state.pop(key, None)


# ---------------------------------------------------------------------------------------- widget state
def initial(key: str, **default) -> dict:
    """The widget's default, unless session state already holds its value (set by an import, or by the user):
    passing both makes Streamlit warn and is ambiguous."""
    return {} if key in st.session_state else default


def ensure_selection(record: RunRecord) -> None:
    """Before the display widgets are drawn: the run-specific choices of ``record`` (a new run, or widget state
    dropped by a page switch)."""
    selection = st.session_state.get(SELECTION_KEY) or {}
    if selection.get("token") != run_token(record) or "cmp_panels" not in st.session_state:
        select_for(record)


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
    """The display settings as a bundle records them (``params["display"]``)."""
    return {name: st.session_state.get(key, default) for key, (name, default) in DISPLAY_WIDGETS.items()}


def run_token(record: RunRecord) -> str:
    return hashlib.sha1(f"{record.created}|{record.image_name}|{record.map_names}".encode()).hexdigest()


def _default_word(words) -> int:
    """A content word first (a shape, then a colour), not an article."""
    for preferred in ("circle", "square", "triangle"):
        for i, e in enumerate(words):
            if e.meta.get("word") == preferred:
                return i
    return 0
