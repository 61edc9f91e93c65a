"""The visual-complexity lens's widget groups: each returns a plain value or a frozen request the services take."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from components.complexity import EXPLAIN, services
from components.image_input import UPLOAD_MB
from components.uploads import Upload, expand_uploads
from glimpse.complexity import BITS
from glimpse.complexity.fit import HEADLINE_FORMULAS, default_repeats
from glimpse.display import SEQUENTIAL_MAPS
from glimpse.images import IMAGE_SUFFIXES, MAX_PIXELS

#: The maps of "Where is the complexity?" (their help says what each is).
MAP_KINDS = ("gradient", "colour", "edges")


@dataclass(frozen=True)
class MapRequest:
    """Which complexity map to draw and how (display only: the maps are cached by bits and tile)."""

    kind: str
    window: int
    overlay: bool
    colorscale: str


@dataclass(frozen=True)
class BatchRequest:
    uploads: tuple[Upload, ...]
    skipped: tuple[str, ...]  # entries of the upload that are no images (with why)
    standins: bool


@dataclass(frozen=True)
class FitRequest:
    dataset: str
    csv: bytes
    formulas: tuple[tuple[str, str], ...]  # (name, statsmodels formula)
    repeats: int


def standins_toggle() -> bool:
    return st.toggle("Segment-count stand-ins", key="cx_standins", help=EXPLAIN["standin"] + " Adds about a second.")


def bits_control() -> int:
    return st.select_slider("MUC bits per channel", options=list(BITS), value=4, key="cx_bits")


def map_controls() -> MapRequest:
    c1, c2, c3, c4 = st.columns([1.6, 1, 1, 1])
    kind = c1.radio(
        "Map",
        MAP_KINDS,
        horizontal=True,
        key="cx_map_kind",
        help="gradient: Sobel magnitude; colour: distinct colours per tile; edges: the Canny map",
    )
    window = c2.select_slider("Colour tile (px)", [4, 8, 16, 32], value=8, key="cx_window")
    overlay = c3.toggle("Over the image", value=False, key="cx_overlay")
    return MapRequest(kind, window, overlay, c4.selectbox("Colour scale", SEQUENTIAL_MAPS, key="cx_cmap"))


def batch_form() -> BatchRequest | None:
    """The upload form; the request when "Score images" was pressed with files."""
    with st.form("cx_batch_form", border=False):
        files = st.file_uploader(
            f"Images or .zip archives (each file at most {UPLOAD_MB} MB, each image at most "
            f"{MAX_PIXELS / 1e6:.0f} megapixels)",
            accept_multiple_files=True,
            type=[s.lstrip(".") for s in IMAGE_SUFFIXES] + ["zip"],
            key="cx_batch_files",
        )
        standins = st.checkbox("Add segment-count stand-ins (slower)", key="cx_batch_standins")
        pressed = st.form_submit_button("Score images", type="primary", icon=":material/play_arrow:")
    if not pressed:
        return None
    if not files:
        st.warning("Add at least one image or zip first.")
        return None
    uploads, skipped = expand_uploads(files)
    return BatchRequest(tuple(uploads), tuple(skipped), standins)


def _ratings_table() -> tuple[str | None, bytes | None]:
    """(name, CSV bytes) of the chosen ratings table: a shipped one or the user's upload."""
    try:
        tables = services.shipped()
    except FileNotFoundError as err:
        st.warning(f"{err}. You can still upload your own ratings table.")
        tables = {}
    sources = (["Shipped table"] if tables else []) + ["Upload CSV"]
    source = st.radio("Ratings table", sources, horizontal=True, key="cx_fit_source")
    if source == "Shipped table":
        default = list(tables).index("RSIVL") if "RSIVL" in tables else 0
        name = st.selectbox("Dataset", list(tables), index=default, key="cx_fit_dataset")
        return name, tables[name]
    up = st.file_uploader(
        "CSV with image_id, complexity (rating) and feature columns", type=["csv"], key="cx_fit_upload"
    )
    return (up.name.rsplit(".", 1)[0], up.getvalue()) if up is not None else (None, None)


def fit_form() -> FitRequest | None:
    """The ratings table, the formulas and the repeats; the request when "Fit" was pressed with both."""
    name, csv = _ratings_table()
    with st.form("cx_fit_form", border=False):
        headline = dict(HEADLINE_FORMULAS)
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
        pressed = st.form_submit_button("Fit", type="primary", icon=":material/play_arrow:")
    if not pressed:
        return None
    formulas = {k: headline[k] for k in chosen}
    if custom.strip():
        formulas[custom.strip()] = custom.strip()
    if csv is None:
        st.warning("Upload a CSV first.")
        return None
    if not formulas:
        st.warning("Choose at least one formula.")
        return None
    return FitRequest(name, csv, tuple(formulas.items()), int(repeats) or default_repeats(name))
