"""Cached, bounded loaders for shared models (one object per process, read-only outside its lock).

Every loaded model is recorded in one process-wide :class:`models.memory.ModelLedger` (its bytes, its last
use): a model that would take its memory pool over the budget evicts the least recently used ones first, and
a model that leaves a cache (evicted, unloaded, or pushed out by ``max_entries``) is released through
``on_release``: its line is closed and its tensors are freed once the work on it is done.
"""

from __future__ import annotations

import threading

import streamlit as st

from components.image_input import BY_DIGEST, ImageChoice
from models.diffusion import DiffusionBundle, load_pipeline
from models.memory import ModelLedger, release
from models.registry import ClassifierBundle, ModelLoadError, load_classifier


@st.cache_resource(show_spinner=False)
def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas for this process (``mallopt(M_ARENA_MAX)``); True when applied.

    Streamlit runs every script run (each click) in a new thread, and glibc gives new threads new malloc
    arenas whose memory is faulted in afresh: a gradient map's forward+backward took about 130 ms in a fresh
    thread against 63 ms in a warm one, and 70–83 ms in a fresh thread with the arenas capped (medians of 6 on
    the 2-core machine). Nothing happens off glibc (macOS, musl) or when ``MALLOC_ARENA_MAX`` is set already.
    """
    import ctypes
    import os
    import sys

    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-8, int(arenas)))  # M_ARENA_MAX = -8 in glibc's malloc.h
    except (OSError, AttributeError):
        return False


@st.cache_resource(show_spinner=False)
def ledger() -> ModelLedger:
    """The process-wide record of loaded models and the memory budgets (``GLIMPSE_*_BUDGET_MB``)."""
    return ModelLedger()


def _released(bundle) -> None:
    """on_release of the model caches: forget the model and free it once its work is done."""
    ledger().forget(bundle)
    release(bundle, "it left the model cache")


@st.cache_resource(max_entries=6, show_spinner="Loading the classifier…", on_release=_released)
def _classifier(model_id: str, device: str) -> ClassifierBundle:
    return load_classifier(model_id, device=device)


@st.cache_resource(max_entries=3, show_spinner="Loading the diffusion pipeline…", on_release=_released)
def _pipeline(model_id: str, device: str) -> DiffusionBundle:
    return load_pipeline(model_id, device=device)


def _shared(loader, model_id: str, device: str):
    bundle = loader(model_id, device)
    if bundle.lock.closed:  # unloaded since: drop the stale entry and load it again
        loader.clear(model_id, device)
        bundle = loader(model_id, device)
    ledger().admit(f"{model_id}|{device}", bundle, lambda: loader.clear(model_id, device))
    return bundle


def classifier(model_id: str, device: str) -> ClassifierBundle:
    """The shared classifier bundle for (model id, device); ModelLoadError and ModelMemoryError propagate so
    the page can explain them."""
    return _shared(_classifier, model_id, device)


def classifier_or_stop(model_id: str, device: str) -> ClassifierBundle:
    """:func:`classifier` for a page that needs the sidebar's classifier: a model that fails to load is
    explained with ``st.error`` and the page stops there."""
    try:
        return classifier(model_id, device)
    except (ModelLoadError, ValueError) as err:
        st.error(f"Could not load the classifier {model_id!r}: {err}. Pick another one in the sidebar.")
        st.stop()


def pipeline(model_id: str, device: str) -> DiffusionBundle:
    """The shared pipeline bundle for (model id, device); ModelLoadError and ModelMemoryError propagate."""
    return _shared(_pipeline, model_id, device)


def unload(model_id: str, device: str) -> bool:
    """Drop one model from the caches and free it once its current work is done (the Unload button)."""
    return ledger().unload(f"{model_id}|{device}")


@st.cache_data(max_entries=64, show_spinner="Classifying…", hash_funcs=BY_DIGEST)
def predictions(model_id: str, device: str, image: ImageChoice) -> list[tuple[int, str, float]]:
    """Top-5 (index, label, probability) of the image (keyed by its digest: ``image_input.BY_DIGEST``)."""
    return classifier(model_id, device).predict(image.pixels, top=5)


@st.cache_resource(max_entries=4, show_spinner=False)
def extra_status(name: str) -> str | None:
    """None if the optional package ``name`` (torchvision, timm) imports, else why it does not."""
    from models.hub import import_extra

    try:
        import_extra(name)
    except ModelLoadError as err:
        return str(err)
    return None


@st.cache_resource(show_spinner=False)
def freeze_startup_objects() -> threading.Thread:
    """Once per process: when the script run that calls this has ended, collect and then move every object alive
    into the permanent generation (``gc.freeze()``). Returns the thread that waits for it.

    Streamlit runs a full ``gc.collect()`` after every script run (``runner.postScriptGC``). That walk visits
    every tracked object, most of them torch's, transformers' and diffusers' modules, which never become
    garbage, and holds the GIL meanwhile: about 1.4 s after each click on the 2-core machine, stalling every
    other session's thread. Frozen objects are skipped, so the collection after a run visits only what was made
    since and still frees each run's garbage. The freeze waits for the calling run to end: frozen while it runs,
    its script runner's reference cycle (thread, context, session state) would never be collected.
    """
    import gc

    run = threading.current_thread()

    def freeze() -> None:
        run.join(timeout=600)
        gc.collect()
        gc.freeze()

    waiter = threading.Thread(target=freeze, name="glimpse-gc-freeze", daemon=True)
    waiter.start()
    return waiter


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
