"""The Diffusion classifier's cached services: the classification, the winning prompt's cross-attention while
the image is denoised, and the shapes classifier's Grad-CAM of the same image."""

from __future__ import annotations

import numpy as np
import streamlit as st

from components import jobs, loaders
from components.attention.services import pipeline
from glimpse.diffusion_classifier import DiffusionClassification, adapter_for, classify


@st.cache_data(max_entries=32, show_spinner=False)
def scores(
    model_id: str,
    device: str,
    image: np.ndarray,
    prompts: tuple[str, ...],
    samples: tuple[int, ...],
    keep: tuple[int, ...] | None,
    loss: str,
    weighting: str,
    seed: int,
) -> DiffusionClassification:
    """The classification (cached across sessions); the pipeline's lock is held while it runs."""
    bundle = pipeline(model_id, device)
    model = adapter_for(bundle.pipe, bundle.model_id)
    with jobs.bar("Denoising") as progress, bundle.lock:
        return classify(
            model,
            image,
            prompts,
            samples=samples if len(samples) > 1 else samples[0],
            keep=keep,
            loss=loss,
            weighting=weighting,
            seed=seed,
            progress=progress,
        )


@st.cache_data(max_entries=16, show_spinner="Tracing the winning prompt's attention…")
def winner_attention(model_id: str, device: str, image: np.ndarray, prompt: str, samples: int, seed: int):
    """(words, per-word maps at the model's resolution) of ``prompt`` while the image is denoised."""
    from glimpse.attention import word_maps
    from glimpse.diffusion_classifier.attention import trace_prompt

    trace = trace_prompt(pipeline(model_id, device), image, prompt, samples=samples, seed=seed)
    return trace.words, word_maps(trace)


@st.cache_data(max_entries=16, show_spinner="Explaining with the shapes classifier…")
def shapes_saliency(device: str, image: np.ndarray, label: str) -> np.ndarray:
    """Grad-CAM of the shapes classifier for ``label`` ("red circle")."""
    from glimpse.saliency import explain

    bundle = loaders.classifier("shapes-classifier", device)
    (m,) = explain(bundle, image, [("gradcam", {})], target=bundle.labels.index(label))
    return m.values
