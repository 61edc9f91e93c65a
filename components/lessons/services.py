"""The lessons' cached services: saliency maps of the sample images, the sanity check, a generation with its
attention, the diffusion classifier's scores of a drawn scene, the complexity ratings, and the BlockDigits
test images. The figures read them; :mod:`components.lessons.warmup` fills them in advance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from components import loaders
from components.lessons import CLASSIFIER, DIGITS, T2I
from glimpse.images import sample_images


def chelsea() -> np.ndarray:
    return sample_images()["chelsea"]


@st.cache_data(max_entries=32, show_spinner="Computing the maps…")
def saliency(model_id: str, device: str, image_key: str, methods: tuple, target: int | None = None) -> list:
    """Maps of a sample image (``image_key``: a scikit-image sample or ``digits:N``, a BlockDigits test image)."""
    from glimpse.saliency import explain

    bundle = loaders.classifier(model_id, device)
    image = digit(int(image_key.split(":")[1]))[0] if image_key.startswith("digits:") else sample_images()[image_key]
    maps = explain(bundle, image, [(m, dict(p)) for m, p in methods], target=target)  # the line, per pass group
    return [m.values for m in maps]


def smoothgrad_maps(device: str, samples: int, noise: float) -> list:
    """The gradient and SmoothGrad maps of chelsea (lesson 1)."""
    return saliency(CLASSIFIER, device, "chelsea",
                    (("gradient", ()), ("smoothgrad", (("samples", samples), ("noise", noise)))))  # fmt: skip


def digit_map(model_id: str, device: str, index: int, method: str) -> list:
    """``method``'s map of BlockDigits test image ``index``, of its own label."""
    return saliency(model_id, device, f"digits:{index}", ((method, ()),), digit(index)[2])


def cam_map(device: str, method: str, target: int) -> np.ndarray:
    """A CAM of chelsea for class ``target`` (lesson 4)."""
    (values,) = saliency(CLASSIFIER, device, "chelsea", ((method, ()),), target)
    return values


@st.cache_resource(show_spinner=False)
def _digits():
    """The BlockDigits test split, built once per process (read-only)."""
    from glimpse.evaluation.blockdigits import blockdigits

    return blockdigits("test")


def digit(index: int) -> tuple[np.ndarray, np.ndarray, int]:
    """BlockDigits test image ``index``: (RGB, its signal mask, its label)."""
    data = _digits()
    return data.rgb(index), data.signal_masks()[index], int(data.labels[index])


@st.cache_data(max_entries=8, show_spinner="Randomising the model, layer by layer…")
def sanity(device: str, method: str, index: int):
    from glimpse.evaluation.sanity import randomisation_check

    bundle = loaders.classifier(DIGITS[0], device)
    image, _, label = digit(index)
    return randomisation_check(bundle, image, method, target=label)  # on a copy: the line only to copy it


@st.cache_data(max_entries=4, show_spinner=False)
def extremes(device: str) -> tuple[int, int]:
    """The embedded classifier's most and least likely class of chelsea (one forward pass, once)."""
    from glimpse.evaluation.sensitivity import extreme_classes

    return extreme_classes(loaders.classifier(CLASSIFIER, device), chelsea())


@st.cache_data(max_entries=8, show_spinner="Generating and recording the attention…")
def attention(device: str, prompt: str, seed: int):
    from glimpse.attention import generate_with_attention

    return generate_with_attention(loaders.pipeline(T2I, device), prompt, seed=seed)  # holds the line itself


@st.cache_data(max_entries=8, show_spinner="Denoising under each caption…")
def relation_scores(device: str, caption: str, samples: int, seed: int):
    """The drawn scene of ``caption`` and the diffusion classifier's scores of it under the caption, the caption
    with its objects swapped (the same words) and its relation flipped."""
    from glimpse.diffusion_classifier import adapter_for, classify
    from glimpse.diffusion_classifier.negatives import hard_negatives
    from glimpse.evaluation.shapes_scenes import parse_caption, render_scene

    spec = parse_caption(caption)
    image = render_scene(spec, np.random.default_rng(seed)).image
    first, second = spec.objects
    swapped = f"a {second.colour} {second.shape} {spec.relation} a {first.colour} {first.shape}"  # same words
    flipped = [p for kind, p in hard_negatives(caption) if kind == "relation flipped"]
    prompts = (caption, swapped, *flipped)
    bundle = loaders.pipeline(T2I, device)
    with bundle.lock:
        result = classify(adapter_for(bundle.pipe, bundle.model_id), image, prompts, samples=samples, seed=seed)
    return image, result


@st.cache_data(max_entries=4, show_spinner=False)
def ratings(dataset: str) -> pd.DataFrame:
    from glimpse.complexity.fit import prepare, shipped_tables

    return prepare(shipped_tables()[dataset], name=dataset)
