"""The Diffusion classifier's widgets: the image (a drawn scene, an upload or the Cross-attention page's image),
the candidate prompts (typed, from a template, hard negatives), the settings and Classify, returning a frozen
:class:`ClassifyRequest` when it is pressed."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import streamlit as st

from components import jobs
from components.attention import state as attention_state
from components.diffusion_classifier import SHOW
from components.image_input import IMAGE_LIMITS
from glimpse.diffusion_classifier.negatives import COLOURS, SHAPES, expand_template, hard_negatives
from glimpse.display import resize_image

SOURCES = ("A drawn scene", "Upload", "The Cross-attention page's image")


@dataclass(frozen=True)
class ClassifyRequest:
    """What Classify was pressed with: the image (and its name) and the arguments of the cached scores."""

    model_id: str
    device: str
    image: np.ndarray
    image_name: str
    prompts: tuple[str, ...]
    samples: tuple[int, ...]
    keep: tuple[int, ...] | None
    loss: str
    weighting: str
    seed: int

    def arguments(self) -> dict:
        """The arguments of :func:`components.diffusion_classifier.services.scores` (the name is only shown)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "image_name"}


def request_controls(bundle, device: str) -> ClassifyRequest | None:
    """The image beside its candidates and settings, and Classify; the request when it was pressed. Without an
    image the page stops here (the picker says what to do)."""
    picked = image_picker()
    if picked is None:
        st.stop()
    name, image = picked
    left, right = st.columns([1, 3])
    left.image(resize_image(image, (SHOW, SHOW)), caption=name, width="stretch")
    with right:
        prompts = candidates(bundle, name)
        samples, keep, loss, weighting, seed = settings()
        go = st.button("Classify", type="primary", icon=":material/play_arrow:", disabled=len(prompts) < 2)
        if len(prompts) < 2:
            st.caption("Give at least two candidate prompts.")
        else:
            cost_caption(bundle, device, tuple(prompts), samples, keep)
    if not go:
        return None
    return ClassifyRequest(bundle.model_id, device, image, name, tuple(prompts), samples, keep, loss, weighting, seed)


def image_picker() -> tuple[str, np.ndarray] | None:
    """The image to classify: a scene drawn by the shapes generator, an upload, or the attention page's image."""
    from glimpse.evaluation.shapes_scenes import HELD_OUT_CAPTIONS, parse_caption, render_scene, single_object_specs

    source = st.radio("Image", SOURCES, horizontal=True, key="dc_source")
    if source == SOURCES[0]:
        c1, c2 = st.columns([3, 1])
        captions = list(HELD_OUT_CAPTIONS) + [s.text for s in single_object_specs()]
        caption = c1.selectbox(
            "Scene", captions, key="dc_scene", help="Two-object scenes: captions the model never saw in training."
        )
        seed = c2.number_input("Layout seed", 0, 10_000, 0, key="dc_scene_seed")
        image = render_scene(parse_caption(caption), np.random.default_rng(int(seed))).image
        return f"drawn: {caption}", image
    if source == SOURCES[1]:
        upload = st.file_uploader(f"An image ({IMAGE_LIMITS})", type=None, key="dc_upload")
        if upload is None:
            st.info("Upload an image: it is resized to the model's resolution.")
            return None
        from glimpse.images import load_image

        try:
            return upload.name, load_image(upload.getvalue())
        except ValueError as err:
            st.error(f"Cannot read {upload.name!r}: {err}")
            return None
    stored = attention_state.stored()
    if stored is None:
        st.info("Generate an image on the **Cross-attention** page first; it appears here.")
        return None
    request, result = stored
    return f"generated: {request.prompt}", result.image


def default_prompts(name: str) -> str:
    """The first candidate: the drawn scene's caption or the generated image's prompt."""
    for prefix in ("drawn: ", "generated: "):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return "a red circle\na blue square"


def candidates(bundle, image_name: str) -> list[str]:
    """Typed prompts, a template's, and the first prompt's hard negatives (each once)."""
    st.session_state.setdefault("dc_prompts_for", image_name)
    if st.session_state.get("dc_prompts_for") != image_name:  # a new image: its caption becomes the first line
        st.session_state["dc_prompts_for"] = image_name
        st.session_state["dc_prompts"] = default_prompts(image_name)
    st.session_state.setdefault("dc_prompts", default_prompts(image_name))
    typed = st.text_area("Candidate prompts, one per line", key="dc_prompts", height=100)
    c1, c2 = st.columns([2, 1])
    template = c1.text_input(
        "Template (optional)", key="dc_template", placeholder="a {colour} {shape}", help="{colour} and {shape} slots"
    )
    negatives = c2.checkbox("Hard negatives of the first prompt", value=True, key="dc_negatives")
    vocab = bundle.vocabulary
    colours = tuple(w for w in COLOURS if vocab is None or w in vocab) or None
    shapes = tuple(w for w in SHAPES if vocab is None or w in vocab) or None
    out = [line.strip() for line in typed.splitlines() if line.strip()]
    if template.strip():
        try:
            out += expand_template(template.strip(), colours=colours, shapes=shapes)
        except ValueError as err:
            st.error(str(err))
    if negatives and out:
        made = hard_negatives(out[0], colours=colours, shapes=shapes)
        if made:
            out += [text for _, text in made]
            st.caption("Hard negatives: " + "; ".join(f"*{kind}*: {text}" for kind, text in made))
        else:
            st.caption(f"No hard negatives: {out[0]!r} is not 'a <colour> <shape> [<relation> a <colour> <shape>]'.")
    return list(dict.fromkeys(out))


def settings() -> tuple[tuple[int, ...], tuple[int, ...] | None, str, str, int]:
    """Timesteps (and pruning), loss, weighting, seed."""
    c1, c2, c3, c4 = st.columns(4)
    samples = c1.slider("Timesteps", 4, 100, 20, key="dc_samples", help="evenly spaced over the 1000")
    loss = c2.selectbox("Error", ("l2", "l1", "huber"), key="dc_loss")
    weighting = c3.selectbox("Timestep weights", ("uniform", "logit-normal"), key="dc_weighting")
    seed = c4.number_input("Noise seed", 0, 10_000, 0, key="dc_seed")
    prune = st.toggle(
        "Prune (adaptive)", key="dc_prune", help="Score every prompt on a few timesteps first, then only the best"
    )
    if not prune:
        return (samples,), None, loss, weighting, int(seed)
    c1, c2 = st.columns(2)
    first = c1.slider("Timesteps for every prompt", 1, max(1, samples - 1), min(2, samples - 1), key="dc_first")
    kept = c2.slider("Prompts kept after them", 1, 10, 2, key="dc_keep")
    return (first, samples), (kept, 1), loss, weighting, int(seed)


def cost_caption(bundle, device: str, prompts: tuple[str, ...], samples: tuple[int, ...], keep) -> None:
    """What Classify will cost: prompts × timesteps denoiser passes, each timed on this machine."""
    from components.costs import classification_seconds

    try:
        seconds = classification_seconds(bundle.model_id, device, prompts, samples, keep)
    except (ValueError, RuntimeError):  # prompts the model refuses: Classify says why
        return
    passes = f"{len(prompts)} prompts × {samples[-1]} timesteps" + (" (pruned)" if keep else "")
    st.caption(f"**Cost:** {passes}, {jobs.seconds_text(seconds)} on this machine.")


def word_picker(words: tuple[str, ...]) -> int:
    """The word of the winning prompt whose attention is shown (the third, an object, by default)."""
    return st.selectbox("Word", range(len(words)), format_func=lambda i: words[i], index=min(2, len(words) - 1))
