"""Cached, bounded loaders for shared models (one object per process, read-only outside its lock)."""

from __future__ import annotations

import streamlit as st

from components.image_input import BY_DIGEST, ImageChoice
from models.registry import ClassifierBundle, load_classifier


@st.cache_resource(max_entries=3, show_spinner="Loading the classifier…")
def classifier(model_id: str, device: str) -> ClassifierBundle:
    """The classifier bundle for (model id, device); errors propagate so the page can explain them."""
    return load_classifier(model_id, device=device)


@st.cache_data(max_entries=64, show_spinner="Classifying…", hash_funcs=BY_DIGEST)
def predictions(model_id: str, device: str, image: ImageChoice) -> list[tuple[int, str, float]]:
    """Top-5 (index, label, probability) of the image (keyed by its digest: ``image_input.BY_DIGEST``)."""
    return classifier(model_id, device).predict(image.pixels, top=5)


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


@st.cache_resource(show_spinner="Loading the model libraries (once per server start)…")
def import_model_libraries() -> tuple[str, str]:
    """Import transformers and diffusers once per process, before any page runs.

    Their lazily populated modules are not safe to import from two script threads at the same moment
    (seen as "cannot import name 'PreTrainedModel' from 'transformers'" when a second session opened the
    cross-attention page while the first was still starting). st.cache_resource runs this once and makes
    concurrent callers wait for it, so no page imports them half-initialised.
    """
    import diffusers
    import transformers
    from diffusers import DiffusionPipeline  # noqa: F401  (resolves the lazy submodules now)
    from transformers import PreTrainedModel  # noqa: F401

    return transformers.__version__, diffusers.__version__
