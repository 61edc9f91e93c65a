"""Cached, bounded loaders for shared models (one object per process, read-only outside its lock)."""

from __future__ import annotations

import streamlit as st

from models.registry import ClassifierBundle, load_classifier


@st.cache_resource(max_entries=3, show_spinner="Loading the classifier…")
def classifier(model_id: str, device: str) -> ClassifierBundle:
    """The classifier bundle for (model id, device); errors propagate so the page can explain them."""
    return load_classifier(model_id, device=device)
