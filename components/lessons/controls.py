"""The lessons' widgets: the lesson a link names and the step to another, and each figure's controls (plain
values, at the defaults the warm-up computes)."""

from __future__ import annotations

import streamlit as st

from components.lessons import CAMS, RELATION_SAMPLES, ROBUST_IMAGE, ROBUST_METHOD, SANITY_IMAGE, SMOOTHGRAD_DEFAULT


# --------------------------------------------------------------------------------------------- the lesson
def lesson_index(keys: tuple[str, ...]) -> int:
    """The lesson named by ``?lesson=`` (its key or its number from 1), else the first."""
    wanted = st.query_params.get("lesson", keys[0])
    if wanted in keys:
        return keys.index(wanted)
    if str(wanted).isdigit() and 1 <= int(wanted) <= len(keys):
        return int(wanted) - 1
    st.warning(f"No lesson {wanted!r}; showing the first. Lessons: {', '.join(keys)}.")
    return 0


def go_to(keys: tuple[str, ...], index: int) -> None:
    st.query_params["lesson"] = keys[index % len(keys)]


def presenting() -> bool:
    """Whether the link asks for the presenter mode (``?present=1``)."""
    return st.query_params.get("present") == "1"


# -------------------------------------------------------------------------------------------- the figures
def method_label(method: str) -> str:
    """A method's name as people write it ("Guided Backprop"): a key such as ``guided_backprop`` broke mid-word
    in the presenter mode's large type."""
    from glimpse.saliency import REGISTRY

    return REGISTRY[method].info.label


def smoothgrad() -> tuple[int, float]:
    """(samples, noise σ) of lesson 1."""
    a, b = st.columns(2)
    samples = a.select_slider("Samples", [1, 5, 10, 25, 50], SMOOTHGRAD_DEFAULT[0], key="l1_samples")
    noise = b.select_slider("Noise σ (fraction of the input range)", [0.05, 0.1, 0.15, 0.25, 0.4],
                            SMOOTHGRAD_DEFAULT[1], key="l1_noise")  # fmt: skip
    return samples, noise


def sanity_image() -> int:
    return st.slider("BlockDigits test image", 0, 19, SANITY_IMAGE, key="l2_image")


def sanity_stage(stages: tuple[str, ...]) -> int:
    """How far down the cascade the model is randomised (an index into ``stages``)."""
    return st.select_slider("Randomised down to", list(range(len(stages))), len(stages) - 1, key="l2_stage",
                            format_func=lambda k: stages[k])  # fmt: skip


def robust() -> tuple[int, str]:
    """(BlockDigits test image, method) of lesson 3."""
    a, b = st.columns(2)
    index = a.slider("BlockDigits test image", 0, 19, ROBUST_IMAGE, key="l3_image")
    method = b.selectbox("Method", [ROBUST_METHOD, "input_x_gradient", "integrated_gradients", "gradcam"],
                         key="l3_method", format_func=method_label)  # fmt: skip
    return index, method


def cam_method() -> str:
    return st.radio("Method", CAMS, horizontal=True, key="l4_method", format_func=method_label)


def complexity() -> tuple[str, int]:
    """(rated data set, MUC bits per channel) of lesson 5."""
    a, b = st.columns(2)
    dataset = a.selectbox("Rated images", ["SAVOIAS Scenes", "SAVOIAS Art", "IC9600 Scenes", "VISC", "RSIVL"],
                          key="l5_data")  # fmt: skip
    bits = b.slider("MUC bits per channel", 1, 8, 4, key="l5_bits")
    return dataset, bits


def denoising_step(steps: int) -> int:
    return st.slider("Denoising step", 1, steps, 1, key="l6_step")


def object_pair() -> tuple[str, str]:
    """(colour word, shape word) of the object lesson 7 compares."""
    pair = st.radio("Object", ["red circle", "blue square"], horizontal=True, key="l7_pair")
    colour, shape = pair.split()
    return colour, shape


def relation(scenes: list[str]) -> tuple[str, int]:
    """(the drawn scene's caption, timesteps per caption) of lesson 8."""
    a, b = st.columns(2)
    caption = a.selectbox("Scene", scenes, key="l8_scene")
    samples = b.select_slider("Timesteps per caption", [5, 10, 20], RELATION_SAMPLES, key="l8_samples")
    return caption, samples
