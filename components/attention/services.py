"""The Cross-attention lens's cached services: the shared pipeline, one generation per request, and the stored
trace re-sliced for the views (word maps over a slice, per step, mass over time, the scrubber's GIF)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from components import jobs, loaders
from glimpse.attention import GenerationResult, generate_with_attention, word_maps, word_mass_over_time
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
) -> GenerationResult:
    """Generate once and record cross-attention at every resolution (heads averaged unless ``heads``).

    The progress bar is created inside the cached function so that a cache hit replays it (finished)
    instead of pointing at an element of another run.
    """
    bundle = pipeline(model_id, device)
    with jobs.bar("Denoising", unit="step") as progress:
        return generate_with_attention(
            bundle, prompt, seed=seed, steps=steps, guidance=guidance, heads=heads, layers=layers, progress=progress
        )


def _result_key(result: GenerationResult) -> tuple:
    """What determines a generation (it is deterministic): the key its re-sliced views are cached on."""
    t = result.trace
    return (t.model_id, t.prompt, t.seed, t.steps, t.guidance, t.heads, getattr(t, "layer_set", None))


_BY_RESULT = {GenerationResult: _result_key}


@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=_BY_RESULT)
def sliced_maps(result: GenerationResult, sl: Slice) -> np.ndarray:
    """Every word's map over the slice's steps, (words, size, size)."""
    return word_maps(result.trace, size=sl.size, timesteps=slice(sl.lo, sl.hi + 1), **sl.select())


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
