"""The Cross-attention lens's cached services: the shared pipeline, one generation per request, and the stored
trace re-sliced for the views (word maps over a slice, per step, mass over time, the scrubber's GIF)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from components import jobs, loaders
from glimpse.attention import (
    ConceptGeneration,
    GenerationResult,
    generate_with_attention,
    generate_with_concepts,
    word_maps,
    word_mass_over_time,
)
from glimpse.attention.export import scrubber_gif

if TYPE_CHECKING:
    from components.attention.controls import Slice

#: the shared pipeline loader (budgeted and released with the classifiers, components/loaders.py)
pipeline = loaders.pipeline


@st.cache_data(max_entries=16, show_spinner=False)
def generation(
    model_id: str,
    device: str,
    prompt: str,
    seed: int,
    steps: int,
    guidance: float,
    heads: bool = False,
    layers: str = "daam",
    concept_attention: bool = False,
    concepts: tuple[str, ...] = (),
) -> GenerationResult:
    """Generate once and record cross-attention at every resolution (heads averaged unless ``heads``), and with
    ``concept_attention`` ConceptAttention's maps of ``concepts`` too (a :class:`ConceptGeneration`).

    The progress bar is created inside the cached function so that a cache hit replays it (finished)
    instead of pointing at an element of another run.
    """
    bundle = pipeline(model_id, device)
    options = dict(seed=seed, steps=steps, guidance=guidance, heads=heads, layers=layers)
    with jobs.bar("Denoising", unit="step") as progress:
        if concept_attention:
            return generate_with_concepts(bundle, prompt, concepts or None, progress=progress, **options)
        return generate_with_attention(bundle, prompt, progress=progress, **options)


def _result_key(result: GenerationResult) -> tuple:
    """What determines a generation (it is deterministic): the key its re-sliced views are cached on."""
    t = result.trace
    return (t.model_id, t.prompt, t.seed, t.steps, t.guidance, t.heads, getattr(t, "layer_set", None))


_BY_RESULT = {
    GenerationResult: _result_key,
    ConceptGeneration: lambda r: (*_result_key(r), r.concepts.words),
}


@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=_BY_RESULT)
def sliced_maps(result: GenerationResult, sl: Slice) -> np.ndarray:
    """Every word's map over the slice's steps, (words, size, size)."""
    return word_maps(result.trace, size=sl.size, timesteps=slice(sl.lo, sl.hi + 1), **sl.select())


@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=_BY_RESULT)
def concept_maps(result: ConceptGeneration, sl: Slice) -> np.ndarray:
    """Every concept's ConceptAttention map over the slice's steps and its layers that carry concepts (all joint
    blocks when the slice takes all layers or none of them), (concepts, size, size)."""
    trace = result.concepts
    layers = [name for name in sl.layers or () if name in trace.layers] or None
    return word_maps(trace, size=sl.size, timesteps=slice(sl.lo, sl.hi + 1), layers=layers)


@st.cache_data(max_entries=16, show_spinner=False, hash_funcs=_BY_RESULT)
def step_maps(result: GenerationResult, sl: Slice) -> np.ndarray:
    """Every word's map at each single step, (steps, words, size, size): the scrubber and the GIF re-slice it."""
    trace = result.trace
    return np.stack(
        [word_maps(trace, size=sl.size, timesteps=slice(i, i + 1), **sl.select()) for i in range(len(trace.timesteps))]
    )


@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=_BY_RESULT)
def mass_over_time(result: GenerationResult, sl: Slice) -> np.ndarray:
    return word_mass_over_time(result.trace, **sl.select())


@st.cache_data(max_entries=32, show_spinner=False)
def scrubber_gif_cached(frames: np.ndarray, image: np.ndarray, labels: tuple[str, ...]) -> bytes:
    """The scrubber's frames as a GIF (128 px); keyed by the frames' content."""
    return scrubber_gif(frames, image=image, labels=labels, size=128)
