"""The Diffusion classifier page: which prompt does the text-to-image model find most likely for an image?

Controls (image, candidates, settings) → one cached service (:func:`scores`) → views (probabilities and
errors, error curves over timesteps, where the winner and the runner-up differ beside the winner's
cross-attention and the shapes classifier's saliency).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components import jobs, loaders, session_results
from components.attention_ui import RESULT_KEY as ATTENTION_RESULT
from components.attention_ui import pipeline
from components.image_input import IMAGE_LIMITS
from components.views import heatmap_figure
from glimpse import npzfile
from glimpse.diffusion_classifier import DiffusionClassification, adapter_for, classify
from glimpse.diffusion_classifier.negatives import COLOURS, SHAPES, expand_template, hard_negatives
from glimpse.display import DIVERGING, colour_range, overlay, resize_image, resize_map
from models.registry import ModelLoadError

CITATION = 'Li et al., "Your Diffusion Model is Secretly a Zero-Shot Classifier", ICCV 2023'
RESULT_KEY = "dc_result"
SOURCES = ("A drawn scene", "Upload", "The Cross-attention page's image")
SHOW = 256  # display side of the small images
DIFF_SIDE = 128  # side the difference map is drawn at (a plotly heatmap: every cell is sent to the browser)
DIFF_CLIP = 99.0  # the difference map's colour bar ends at this percentile of |difference|


@dataclass(frozen=True)
class Request:
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


# ------------------------------------------------------------------------------------------- services
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


# -------------------------------------------------------------------------------------------- controls
def image_picker() -> tuple[str, np.ndarray] | None:
    """The image to classify: a scene drawn by the shapes generator, an upload, or the attention page's image."""
    from models.shapes_scenes import HELD_OUT_CAPTIONS, parse_caption, render_scene, single_object_specs

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
    stored = session_results.get(ATTENTION_RESULT)
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


def run(request: Request) -> None:
    result = None
    try:
        with jobs.heavy("diffusion classification", cancel_message="Classification cancelled."):
            result = scores(
                request.model_id,
                request.device,
                request.image,
                request.prompts,
                request.samples,
                request.keep,
                request.loss,
                request.weighting,
                request.seed,
            )
    except (ValueError, ModelLoadError) as err:
        session_results.pop(RESULT_KEY)
        st.error(f"**Cannot classify:** {err}")
        return
    if result is not None:
        session_results.put(RESULT_KEY, (request, result))


# ----------------------------------------------------------------------------------------------- views
def error_curves(result: DiffusionClassification) -> go.Figure:
    fig = go.Figure()
    order = result.ranking()
    for p in order:
        fig.add_scatter(
            x=list(result.timesteps),
            y=result.errors[p],
            mode="lines+markers",
            name=result.prompts[p],
            line={"width": 3 if p == order[0] else 1},
            connectgaps=False,
        )
    fig.update_layout(
        xaxis_title="timestep t (noisier →)",
        yaxis_title="denoising error",
        height=360,
        margin={"t": 10},
        legend={"font": {"size": 10}},
    )
    return fig


def _big(image: np.ndarray) -> np.ndarray:
    return resize_image(image, (SHOW, SHOW))


def difference_figure(image: np.ndarray, diff: np.ndarray, *, height: int = 370) -> go.Figure:
    """The runner-up's per-pixel error minus the winner's over the image, with its colour bar.

    Diverging and symmetric about 0 (red: the winner fits better), ending at the 99th percentile of
    ``|diff|`` so a few extreme pixels do not leave the rest faint; colours fade to transparent at 0, so
    where the two prompts fit alike the image shows through. The raw map is unchanged (hover and the NPZ).
    """
    _, top, _ = colour_range(diff, "signed", clip=DIFF_CLIP)
    side = (DIFF_SIDE, DIFF_SIDE)
    fig = heatmap_figure(
        resize_map(np.asarray(diff, np.float64), side),
        image=resize_image(image, side),
        colorscale=DIVERGING,
        zmin=-top,
        zmax=top,
        zmid=0.0,
        opacity=0.9,
        fade=True,
        colorbar_title="error: runner-up − winner",
        height=height,
        max_side=DIFF_SIDE,
    )
    # the bar under the picture, so the picture is as wide as the images beside it
    fig.update_traces(
        colorbar=dict(orientation="h", x=0.5, xanchor="center", y=-0.02, yanchor="top", len=0.9, thickness=12),
        selector=dict(type="heatmap"),
    )
    fig.update_layout(margin=dict(b=56))
    return fig


def results_view() -> None:
    request, result = session_results.get(RESULT_KEY)
    ranking = result.ranking()
    winner = result.prompts[ranking[0]]
    prob = result.probabilities
    st.success(f"**{winner}** (probability {prob[ranking[0]]:.3f})")
    rows = result.rows()
    frame = pd.DataFrame([rows[p] for p in ranking]).rename(
        columns={"mean_error": "mean error", "timesteps": "timesteps scored", "stage_reached": "stage reached"}
    )
    st.dataframe(frame.style.format(precision=4), hide_index=True, width="stretch")
    st.caption(
        "Probability: softmax of minus the summed error (the diffusion ELBO's estimate of log p(image | prompt) up "
        f"to a constant) over the prompts of the last stage. {result.denoiser_calls} denoiser calls "
        f"({result.denoiser_evaluations} prompt × timestep evaluations), {result.seconds:.1f} s."
    )
    st.plotly_chart(error_curves(result), width="stretch", config={"displayModeBar": False}, key="dc_curves")
    c1, c2, c3 = st.columns(3)
    with c1:
        st.plotly_chart(difference_figure(request.image, result.difference_map()), key="dc_difference")
        st.caption(
            f"Where **{winner}** fits better (red) or worse (blue) than **{result.prompts[ranking[1]]}**: the "
            "runner-up's per-pixel error minus the winner's, over the timesteps both were scored at. The bar "
            f"ends at the {DIFF_CLIP:g}th percentile of |difference| (larger values take its end colour)."
        )
    with c2:
        attention_view(request, result, winner)
    with c3:
        saliency_view(request, winner)
    downloads(request, result)


def attention_overlay(image: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A word's attention over the image from 0 to its largest value, faded (:func:`glimpse.display.overlay`):
    where the word draws no attention the image is left as it is, not tinted with the colour map's purple."""
    return overlay(_big(image), values, 0.0, float(np.max(values)) or 1.0, alpha=0.85, fade=True)


def attention_view(request: Request, result: DiffusionClassification, winner: str) -> None:
    try:
        words, maps = winner_attention(
            request.model_id, request.device, request.image, winner, request.samples[-1], request.seed
        )
    except (ValueError, RuntimeError) as err:
        st.info(f"No attention for this model: {err}")
        return
    word = st.selectbox("Word", range(len(words)), format_func=lambda i: words[i], index=min(2, len(words) - 1))
    st.image(attention_overlay(request.image, maps[word]), width="stretch")
    st.caption(f"Cross-attention of **{words[word]}** while the image is denoised under the winning prompt.")


def saliency_view(request: Request, winner: str) -> None:
    from glimpse.diffusion_classifier.negatives import parse

    parsed = parse(winner)
    if request.model_id != "shapes-t2i" or parsed is None:
        st.caption("The shapes classifier's saliency is shown for the embedded model's prompts.")
        return
    colour, shape = parsed[0][0]
    label = f"{colour} {shape}"
    try:
        values = shapes_saliency(request.device, request.image, label)
    except (ValueError, ModelLoadError) as err:
        st.info(f"No saliency: {err}")
        return
    lo, hi, _ = colour_range(values, "signed")
    st.image(overlay(_big(request.image), values, lo, hi, DIVERGING, alpha=0.6), width="stretch")
    st.caption(f"The shapes classifier's Grad-CAM for **{label}** (the discriminative view of the same image).")


def downloads(request: Request, result: DiffusionClassification) -> None:
    c1, c2 = st.columns(2)
    doc = {"image": request.image_name, "model": request.model_id, **result.summary(), "meta": result.meta()}
    c1.download_button("JSON of the scores", json.dumps(doc, indent=2), "diffusion_classifier.json", "application/json")
    arrays = {"errors": result.errors, "timesteps": list(result.timesteps), "difference": result.difference_map()}
    meta = {"format": "glimpse-diffusion-classifier", "version": 1, **result.meta()}
    c2.download_button(
        "NPZ of the errors and the difference map",
        data=lambda: npzfile.write(arrays, meta),
        file_name="diffusion_classifier.npz",
        mime="application/octet-stream",
        on_click="ignore",
    )
