"""Cached, bounded loaders for shared models (one object per process, read-only outside its lock)."""

from __future__ import annotations

import streamlit as st

from models.registry import ClassifierBundle, load_classifier


@st.cache_resource(max_entries=3, show_spinner="Loading the classifier…")
def classifier(model_id: str, device: str) -> ClassifierBundle:
    """The classifier bundle for (model id, device); errors propagate so the page can explain them."""
    return load_classifier(model_id, device=device)


@st.cache_data(max_entries=64, show_spinner="Classifying…")
def predictions(model_id: str, device: str, image_key: str, _pixels) -> list[tuple[int, str, float]]:
    """Top-5 (index, label, probability) for an image; keyed by ``image_key`` (name + pixel digest).

    The pixels are not hashed (an underscore argument): ``image_key`` already names them uniquely, and
    hashing a large photo on every rerun would cost more than the lookup saves.
    """
    return classifier(model_id, device).predict(_pixels, top=5)


@st.cache_resource(max_entries=4, show_spinner=False)
def extra_status(name: str) -> str | None:
    """None if the optional package ``name`` (torchvision, timm) imports, else why it does not."""
    from models.hub import import_extra
    from models.registry import ModelLoadError

    try:
        import_extra(name)
    except ModelLoadError as err:
        return str(err)
    return None
