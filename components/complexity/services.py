"""The visual-complexity lens's cached services: the picked image's features and maps, uploads scored one by one,
and the paper's cross-validated fits. Keys are plain values (image digest, an upload's digest, bytes, numbers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from components.image_input import BY_DIGEST, ImageChoice
from components.uploads import BY_UPLOAD, Upload
from glimpse.complexity import STANDINS, ComplexityFeatures, complexity_batch
from glimpse.complexity.fit import FormulaScore, cross_validate, prepare, shipped_tables
from glimpse.complexity.maps import ComplexityMaps, complexity_maps
from glimpse.display import data_uri
from glimpse.images import MAX_PIXELS, ImageLoadError, load_image

BATCH_KEY = "complexity_batch"
FIT_KEY = "complexity_fit"


def _standins(on: bool) -> tuple[str, ...]:
    return tuple(STANDINS) if on else ()


@st.cache_data(max_entries=16, show_spinner="Measuring complexity…", hash_funcs=BY_DIGEST)
def single(image: ImageChoice, standins: bool) -> ComplexityFeatures:
    """Features of the picked image (keyed by its digest)."""
    return complexity_batch([image.pixels], standins=_standins(standins))[0]


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
    feats = complexity_batch([pixels], standins=_standins(standins), names=[upload.name])[0]
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
    """The paper's tables shipped with glimpse, by dataset name (FileNotFoundError when they are missing)."""
    return {name: path.read_bytes() for name, path in shipped_tables().items()}
