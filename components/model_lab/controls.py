"""The Model lab's widgets: the class, layer, step, size and image-pool pickers, and each tab's controls with its
button and cost, returning a frozen request (the arguments of its cached service) when the button is pressed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields

import numpy as np
import streamlit as st

from components import jobs, loaders
from components.image_input import IMAGE_LIMITS, ImageChoice, image_picker
from components.model_lab.services import Pool, offline_pool
from glimpse.images import MAX_PIXELS, ImageLoadError, load_image, sample_images
from glimpse.lab import Objective

_GO = {"type": "primary", "icon": ":material/play_arrow:"}


class _Arguments:
    def arguments(self) -> dict:
        """The request as the keyword arguments of its tab's cached service (:mod:`components.model_lab.services`)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Visualise(_Arguments):
    model_id: str
    device: str
    objective: Objective
    steps: int
    side: int | None
    seed: int


@dataclass(frozen=True)
class FindFacets(_Arguments):
    model_id: str
    device: str
    class_index: int
    pool: Pool
    k: int
    steps: int
    side: int | None
    seed: int


@dataclass(frozen=True)
class TopImages(_Arguments):
    model_id: str
    device: str
    layer: str
    channel: int
    pool: Pool
    top: int


@dataclass(frozen=True)
class Traverse(_Arguments):
    model_id: str
    device: str
    source: ImageChoice
    target: ImageChoice
    steps: int
    step_size: float
    pthresh: float
    seed: int = 0


# ------------------------------------------------------------------------------------------------ tabs
def visualise(bundle, device: str, default_class: int) -> Visualise | None:
    """A class logit or a channel's mean activation to maximise, steps, size and seed; Visualise."""
    kind = st.radio("Maximise", ["A class", "A channel"], horizontal=True, key="lab_vis_kind")
    if kind == "A class":
        objective = Objective("class", class_picker(bundle, "lab_vis_class", default_class))
    else:
        a, b = st.columns(2)
        layer = layer_picker(bundle, "lab_vis_layer", a)
        objective = Objective("channel", int(b.number_input("Channel", 0, 4095, 0, key="lab_vis_channel")), layer)
    steps, side, seed = steps_and_size(bundle, "lab_vis")
    pressed = st.button("Visualise", key="lab_vis_go", **_GO)
    cost_caption(bundle.model_id, device, steps, side)
    return Visualise(bundle.model_id, device, objective, steps, side, seed) if pressed else None


def find_facets(bundle, device: str, default_class: int) -> FindFacets | None:
    """The class, its images, the number of facets, steps, size and seed; Find the facets."""
    class_index = class_picker(bundle, "lab_facets_class", default_class)
    pool = pool_picker(bundle, class_index, "lab_facets")
    k = st.slider("Facets", 2, 5, 3, key="lab_facets_k")
    steps, side, seed = steps_and_size(bundle, "lab_facets", default_steps=64)
    pressed = st.button("Find the facets", key="lab_facets_go", disabled=pool is None, **_GO)
    cost_caption(bundle.model_id, device, steps, side, runs=k)
    return FindFacets(bundle.model_id, device, class_index, pool, k, steps, side, seed) if pressed else None


def top_images(bundle, device: str) -> TopImages | None:
    """The layer, the channel, how many and the images to rank; Find the top images."""
    a, b, c = st.columns(3)
    layer = layer_picker(bundle, "lab_ex_layer", a)
    channel = int(b.number_input("Channel", 0, 4095, 0, key="lab_ex_channel"))
    top = int(c.slider("Top", 4, 16, 8, key="lab_ex_top"))
    pool = pool_picker(bundle, None, "lab_ex")
    pressed = st.button("Find the top images", key="lab_ex_go", disabled=pool is None, **_GO)
    return TopImages(bundle.model_id, device, layer, channel, pool, top) if pressed else None


def traverse(bundle, device: str) -> Traverse | None:
    """The source and target images, steps, step size and the largest confidence drop; Traverse. Without a
    source image the page stops here."""
    left, right = st.columns(2)
    with left:
        source = image_picker(key="lab_source")
    if source is None:
        st.info("Pick a source image.")
        st.stop()
    with right:
        target = target_picker(source)
        a, b, c = st.columns(3)
        steps = int(a.slider("Steps", 20, 400, 100, step=20, key="lab_bs_steps"))
        step_size = float(b.select_slider("Step size", [0.01, 0.02, 0.04, 0.08], 0.04, key="lab_bs_step"))
        pthresh = float(c.select_slider("Largest drop", [0.05, 0.1, 0.2, 0.3], 0.2, key="lab_bs_pthresh"))
    pressed = st.button("Traverse", key="lab_bs_go", disabled=target is None, **_GO)
    cost_caption(bundle.model_id, device, steps, None, per_step=2)  # a step and its 8-bit check
    return Traverse(bundle.model_id, device, source, target, steps, step_size, pthresh) if pressed else None


def cost_caption(model_id: str, device: str, steps: int, side: int | None, *, runs: int = 1, per_step: int = 1) -> None:
    """What a button will cost: ``runs`` × ``steps`` optimisation steps of ``per_step`` forward+backward images,
    at the pass time measured on this machine (scaled by the image's area when it is smaller than the input)."""
    from components.costs import pass_time

    bundle = loaders.classifier(model_id, device)
    h, w = bundle.input_size
    scale = 1.0 if side is None else min(1.0, side * side / (h * w))
    seconds = runs * steps * per_step * pass_time(model_id, device).single_backward_s * scale
    what = f"{runs} × {steps} steps" if runs > 1 else f"{steps} steps"
    st.caption(f"**Cost:** {what}, {jobs.seconds_text(seconds)} on this machine.")


# --------------------------------------------------------------------------------------------- pickers
def layer_picker(bundle, key: str, column=st) -> str:
    """A layer for channel objectives; the default is the first suggested layer that is not an activation (a
    ReLU's channel is often exactly 0 on a grey start, so its gradient is 0 and nothing happens)."""
    layers = list(bundle.target_layers)
    default = next((k for k, n in enumerate(layers) if "act" not in n.rsplit(".", 1)[-1]), 0)
    return column.selectbox("Layer", layers, index=default, key=key)


def class_picker(bundle, key: str, default: int) -> int:
    labels = list(bundle.labels)
    index = st.selectbox("Class", range(len(labels)), index=default, key=key,
                         format_func=lambda i: f"{labels[i]} ({i})")  # fmt: skip
    return int(index)


def steps_and_size(bundle, key: str, default_steps: int = 128) -> tuple[int, int | None, int]:
    a, b, c = st.columns(3)
    steps = a.slider("Steps", 16, 512, default_steps, step=16, key=f"{key}_steps",
                     help="Adam steps on the image's Fourier spectrum")  # fmt: skip
    h, w = bundle.input_size
    sides = [None] + [s for s in (128, 96, 64) if s < min(h, w)]
    side = b.selectbox("Size", sides, key=f"{key}_side",
                       format_func=lambda s: f"model input ({w}×{h})" if s is None else f"{s}×{s} (faster)")  # fmt: skip
    seed = c.number_input("Seed", 0, 10_000, 0, key=f"{key}_seed")
    return int(steps), side, int(seed)


def pool_picker(bundle, class_index: int | None, key: str) -> Pool | None:
    """Offline pictures (shapes scenes, or crops of the samples ranked for the class) or the user's uploads."""
    source = st.radio("Images", ["Offline pictures", "Upload"], horizontal=True, key=f"{key}_source",
                      help="Offline: rendered scenes for the shapes classifier; for other models, crops of the "
                      "shipped photographs (ranked by the class's probability for facets). For most ImageNet "
                      "classes, upload real pictures of the class.")  # fmt: skip
    if source == "Upload":
        files = st.file_uploader(
            f"Images (several; each {IMAGE_LIMITS})", accept_multiple_files=True, key=f"{key}_files"
        )
        names, images = [], []
        for f in files or []:
            try:
                images.append(load_image(f.getvalue(), max_pixels=MAX_PIXELS, name=f.name))
                names.append(f.name)
            except ImageLoadError as err:
                st.warning(f"Skipped {err}.")
        if not images:
            st.info("Upload a few images to use them.")
            return None
        digest = "|".join(f"{n}:{_digest(im)}" for n, im in zip(names, images))
        return Pool(tuple(names), tuple(images), digest)
    return offline_pool(bundle.model_id, str(bundle.device), class_index)


def target_picker(source: ImageChoice) -> ImageChoice | None:
    samples = sample_images()
    names = [n for n in samples if n != source.name] + ["Upload"]
    name = st.selectbox("Target image", names, key="lab_target")
    if name == "Upload":
        up = st.file_uploader(f"Upload the target ({IMAGE_LIMITS})", key="lab_target_upload")
        if up is None:
            return None
        try:
            pixels = load_image(up.getvalue(), max_pixels=MAX_PIXELS, name=up.name)
        except ImageLoadError as err:
            st.error(f"{err}. Try another file.")
            return None
        return ImageChoice(up.name, pixels, _digest(pixels))
    return ImageChoice(name, samples[name], _digest(samples[name]))


def _digest(pixels: np.ndarray) -> str:
    return hashlib.sha1(pixels.tobytes()).hexdigest()
