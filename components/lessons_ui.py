"""The Lessons page: eight short lessons, each a claim from the literature checked live on the embedded models.

A lesson is a :class:`Lesson`: two paragraphs, one interactive figure (a function that draws its controls and
its figure from cached services), a question whose answer opens on click, and the citation. The page shows
one lesson per screen; ``?lesson=<key>`` links to one, ``?present=1`` is the presenter mode (large type, no
sidebar, ← and → step through the lessons).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components import jobs, loaders
from glimpse.display import auto_scale, resize_map, to_rgb, with_colour_bar
from glimpse.images import sample_images
from models.diffusion import EMBEDDED_T2I

CLASSIFIER = "efficientnet-lite0"
DIGITS = ("blockdigits-standard", "blockdigits-robust")
T2I = EMBEDDED_T2I
SIDE = 200
#: each figure's controls at their defaults (components/lesson_warmup.py computes these figures in advance)
SMOOTHGRAD_DEFAULT = (10, 0.15)  # samples, noise
SANITY_IMAGE, ROBUST_IMAGE, ROBUST_METHOD = 3, 5, "gradient"
SANITY_METHODS = ("gradient", "guided_backprop")
CAMS = ("gradcam", "hirescam", "normgrad")
RELATION_SAMPLES = 10


@dataclass(frozen=True)
class Lesson:
    key: str
    title: str
    paragraphs: tuple[str, str]
    figure: Callable[[str], None]  # draws controls and figure for a device
    question: str
    answer: str
    citation: str


def heat(values: np.ndarray, side: int = SIDE, *, absolute: bool = True) -> np.ndarray:
    """A map as an RGB image (absolute values on a sequential scale by default) with its colour bar below."""
    v = np.abs(values) if absolute else values
    cmap, lo, hi = auto_scale(v, clip=99.5)  # the top 0.5 % saturate, as the saliency page's default
    h, w = v.shape
    size = (side, max(1, round(side * w / h)))
    return with_colour_bar(to_rgb(resize_map(v.astype(np.float32), size), lo, hi, cmap), lo, hi, cmap)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a.ravel(), b.ravel()).statistic)


def _chelsea() -> np.ndarray:
    return sample_images()["chelsea"]


# ------------------------------------------------------------------------------------------- services
@st.cache_data(max_entries=32, show_spinner="Computing the maps…")
def saliency(model_id: str, device: str, image_key: str, methods: tuple, target: int | None = None) -> list:
    """Maps of a sample image (``image_key``: a scikit-image sample or ``digits:N``, a BlockDigits test image)."""
    from glimpse.saliency import explain

    bundle = loaders.classifier(model_id, device)
    image = _digit(int(image_key.split(":")[1]))[0] if image_key.startswith("digits:") else sample_images()[image_key]
    maps = explain(bundle, image, [(m, dict(p)) for m, p in methods], target=target)  # the line, per pass group
    return [m.values for m in maps]


@st.cache_resource(show_spinner=False)
def _digits():
    """The BlockDigits test split, built once per process (read-only)."""
    from glimpse.evaluation.blockdigits import blockdigits

    return blockdigits("test")


def _digit(index: int) -> tuple[np.ndarray, np.ndarray, int]:
    data = _digits()
    return data.rgb(index), data.signal_masks()[index], int(data.labels[index])


@st.cache_data(max_entries=8, show_spinner="Randomising the model, layer by layer…")
def sanity(device: str, method: str, index: int):
    from glimpse.evaluation.sanity import randomisation_check

    bundle = loaders.classifier(DIGITS[0], device)
    image, _, label = _digit(index)
    return randomisation_check(bundle, image, method, target=label)  # on a copy: the line only to copy it


@st.cache_data(max_entries=8, show_spinner="Generating and recording the attention…")
def attention(device: str, prompt: str, seed: int):
    from glimpse.attention import generate_with_attention

    return generate_with_attention(loaders.pipeline(T2I, device), prompt, seed=seed)  # holds the line itself


@st.cache_data(max_entries=8, show_spinner="Denoising under each caption…")
def relation_scores(device: str, caption: str, samples: int, seed: int):
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


# ------------------------------------------------------------------------------------------- figures
def smoothgrad_maps(device: str, samples: int, noise: float) -> list:
    return saliency(CLASSIFIER, device, "chelsea",
                    (("gradient", ()), ("smoothgrad", (("samples", samples), ("noise", noise)))))  # fmt: skip


def smoothgrad_figure(device: str) -> None:
    a, b = st.columns(2)
    samples = a.select_slider("Samples", [1, 5, 10, 25, 50], SMOOTHGRAD_DEFAULT[0], key="l1_samples")
    noise = b.select_slider("Noise σ (fraction of the input range)", [0.05, 0.1, 0.15, 0.25, 0.4],
                            SMOOTHGRAD_DEFAULT[1], key="l1_noise")  # fmt: skip
    grad, smooth = smoothgrad_maps(device, samples, noise)
    cols = st.columns(3)
    cols[0].image(_chelsea(), caption="the image", width=SIDE)
    cols[1].image(heat(grad), caption="|gradient|", width=SIDE)
    cols[2].image(heat(smooth), caption=f"|SmoothGrad| ({samples} × σ {noise})", width=SIDE)


def _label(method: str) -> str:
    """A method's name as people write it ("Guided Backprop"): a key such as ``guided_backprop`` broke mid-word
    in the presenter mode's large type."""
    from glimpse.saliency import REGISTRY

    return REGISTRY[method].info.label


def sanity_figure(device: str) -> None:
    index = st.slider("BlockDigits test image", 0, 19, SANITY_IMAGE, key="l2_image")
    results = {m: sanity(device, m, index) for m in SANITY_METHODS}
    stages = results["gradient"].stages
    stage = st.select_slider("Randomised down to", list(range(len(stages))), len(stages) - 1, key="l2_stage",
                             format_func=lambda k: stages[k])  # fmt: skip
    cols = st.columns(3)
    cols[0].image(_digit(index)[0], caption="the image", width=110)
    for col, (m, r) in zip(cols[1:], results.items()):
        col.image(heat(r.maps[stage], 180), caption=f"{_label(m)} · ρ to trained {r.spearman[stage]:.2f}", width=110)
    fig = go.Figure(
        [go.Scatter(x=list(stages), y=r.spearman, name=_label(m), mode="lines+markers") for m, r in results.items()]
    )
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), yaxis_title="Spearman ρ to the trained map",
                      title="Maps of the randomised model vs the trained one")  # fmt: skip
    st.plotly_chart(fig, width="stretch")
    ends = ", ".join(f"{_label(m)} ρ = {r.spearman[-1]:.2f}" for m, r in results.items())
    st.caption(f"With every stage randomised: {ends}.")


def digit_map(model_id: str, device: str, index: int, method: str) -> list:
    """``method``'s map of BlockDigits test image ``index``, of its own label."""
    return saliency(model_id, device, f"digits:{index}", ((method, ()),), _digit(index)[2])


def robust_figure(device: str) -> None:
    a, b = st.columns(2)
    index = a.slider("BlockDigits test image", 0, 19, ROBUST_IMAGE, key="l3_image")
    method = b.selectbox("Method", [ROBUST_METHOD, "input_x_gradient", "integrated_gradients", "gradcam"],
                         key="l3_method", format_func=_label)  # fmt: skip
    image, signal, label = _digit(index)
    cols = st.columns(3)
    cols[0].image(image, caption=f"digit {label} (signal block {'top' if signal[:32].any() else 'bottom'})", width=110)
    for col, model_id in zip(cols[1:], DIGITS):
        (values,) = digit_map(model_id, device, index, method)
        mass = np.abs(values)
        share = float(mass[signal].sum() / max(mass.sum(), 1e-12))
        col.image(heat(values, 180), caption=f"{model_id.split('-')[1]} · {share:.0%} on the digit", width=110)


@st.cache_data(max_entries=4, show_spinner=False)
def extremes(device: str) -> tuple[int, int]:
    """The embedded classifier's most and least likely class of chelsea (one forward pass, once)."""
    from glimpse.evaluation.sensitivity import extreme_classes

    return extreme_classes(loaders.classifier(CLASSIFIER, device), _chelsea())


def cam_figure(device: str) -> None:
    bundle = loaders.classifier(CLASSIFIER, device)
    top, bottom = extremes(device)
    rows = []
    method = st.radio("Method", CAMS, horizontal=True, key="l4_method", format_func=_label)
    for m in CAMS:
        (first,) = saliency(CLASSIFIER, device, "chelsea", ((m, ()),), top)
        (last,) = saliency(CLASSIFIER, device, "chelsea", ((m, ()),), bottom)
        rows.append({"method": _label(m), "ρ(top class, least likely class)": _spearman(first, last)})
        if m == method:
            shown = (first, last)
    cols = st.columns(3)
    cols[0].image(_chelsea(), caption="the image", width=SIDE)
    cols[1].image(heat(shown[0]), caption=f"{_label(method)} · {bundle.labels[top]}", width=SIDE)
    cols[2].image(heat(shown[1]), caption=f"{_label(method)} · {bundle.labels[bottom]}", width=SIDE)
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def complexity_figure(device: str) -> None:
    a, b = st.columns(2)
    dataset = a.selectbox("Rated images", ["SAVOIAS Scenes", "SAVOIAS Art", "IC9600 Scenes", "VISC", "RSIVL"],
                          key="l5_data")  # fmt: skip
    bits = b.slider("MUC bits per channel", 1, 8, 4, key="l5_bits")
    table = ratings(dataset)
    cols = st.columns(2)
    for col, feature in zip(cols, ["MSG", f"MUC{bits}"]):
        rho = table[[feature, "complexity"]].corr(method="spearman").iloc[0, 1]
        fig = go.Figure(go.Scatter(x=table[feature], y=table["complexity"], mode="markers", marker=dict(size=4)))
        fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), title=f"{feature}: Spearman ρ = {rho:.2f}",
                          xaxis_title=feature, yaxis_title="human rating")  # fmt: skip
        col.plotly_chart(fig, width="stretch")


PROMPT = "a red circle to the left of a blue square"


def red_figure(device: str) -> None:
    from glimpse.attention import word_maps, word_mass_over_time

    result = attention(device, PROMPT, 0)
    trace = result.trace
    n = len(trace.timesteps)
    step = st.slider("Denoising step", 1, n, 1, key="l6_step")
    red = trace.words.index("red")
    cols = st.columns(3)
    cols[0].image(result.image, caption=PROMPT, width=160)
    at_step = word_maps(trace, timesteps=(step - 1, step - 1))[red]
    overall = word_maps(trace)[red]
    cols[1].image(heat(at_step, 160), caption=f"“red” at step {step} (t = {int(trace.timesteps[step - 1])})", width=160)
    cols[2].image(heat(overall, 160), caption="“red” over all steps", width=160)
    mass = word_mass_over_time(trace)
    fig = go.Figure([go.Scatter(y=mass[k], name=w, mode="lines") for k, w in enumerate(trace.words)])
    fig.update_layout(height=250, margin=dict(l=10, r=10, t=30, b=10), title="Each word's share of the attention",
                      xaxis_title="step")  # fmt: skip
    st.plotly_chart(fig, width="stretch")


def _top_region(values: np.ndarray, share: float = 0.2) -> np.ndarray:
    return values >= np.quantile(values, 1 - share)


def style_figure(device: str) -> None:
    from glimpse.attention import word_maps

    result = attention(device, PROMPT, 0)
    trace = result.trace
    maps = word_maps(trace)
    pair = st.radio("Object", ["red circle", "blue square"], horizontal=True, key="l7_pair")
    colour, shape = pair.split()
    c, s = maps[trace.words.index(colour)], maps[trace.words.index(shape)]
    iou = float((_top_region(c) & _top_region(s)).sum() / max((_top_region(c) | _top_region(s)).sum(), 1))
    cols = st.columns(3)
    cols[0].image(result.image, caption=PROMPT, width=160)
    cols[1].image(heat(c, 160), caption=f"“{colour}” (style)", width=160)
    cols[2].image(heat(s, 160), caption=f"“{shape}” (content)", width=160)
    st.caption(f"Overlap of their top-20 % regions (IoU): {iou:.2f}")


def relation_figure(device: str) -> None:
    a, b = st.columns(2)
    scenes = [PROMPT, "a green triangle above a red circle", "a yellow square to the right of a green triangle"]
    caption = a.selectbox("Scene", scenes, key="l8_scene")
    samples = b.select_slider("Timesteps per caption", [5, 10, 20], RELATION_SAMPLES, key="l8_samples")
    image, result = relation_scores(device, caption, samples, 0)
    cols = st.columns([1, 2])
    cols[0].image(image, caption=f"drawn: {caption}", width=160)
    fig = go.Figure(go.Bar(x=result.probabilities, y=list(result.prompts), orientation="h"))
    fig.update_layout(height=220, margin=dict(l=10, r=10, t=30, b=10), title="Which caption explains it best?",
                      xaxis_title="probability", yaxis_autorange="reversed")  # fmt: skip
    cols[1].plotly_chart(fig, width="stretch")


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "smoothgrad",
        "A gradient map is noisy; SmoothGrad averages the noise away",
        (
            "The gradient of the class score says how each pixel would change the score, but it jumps from pixel to "
            "pixel: a network's gradient is locally unstable, so the map looks like speckle on top of the object.",
            "SmoothGrad adds Gaussian noise to the image many times and averages the gradients. Raise the number of "
            "samples and watch the speckle fade; raise the noise and the map blurs into the object's shape.",
        ),  # fmt: skip
        smoothgrad_figure,
        "With one sample, why is SmoothGrad not simply the gradient?",
        "One noisy copy is the gradient at a different point, just as noisy: the averaging over many copies is what "
        "removes the noise. The noise level sets how far apart those points are.",
        "Smilkov et al., SmoothGrad: removing noise by adding noise, ICML Workshop 2017",
    ),
    Lesson(
        "sanity",
        "Sanity check: randomise the top layers",
        (
            "If a map explains the model, destroying the model should destroy the map. Adebayo et al. re-initialise the "
            "network's layers from the output down and compare each map to the trained model's.",
            "The gradient changes as soon as the top layer is random. Guided Backprop changes later and less: with the "
            "top layers random it still draws the image's edges, and its map comes apart only as the layers near the "
            "input go. Move the slider down the cascade and compare the two curves.",
        ),  # fmt: skip
        sanity_figure,
        "Guided Backprop's maps look sharp and convincing. What does the check say about them?",
        "That they are not about the model's decision: they survive randomising the layers that make the decision. "
        "A sharp map can be an edge detector, not an explanation.",
        "Adebayo et al., Sanity Checks for Saliency Maps, NeurIPS 2018",
    ),
    Lesson(
        "robust",
        "Standard vs robust models on BlockDigits: where is the evidence?",
        (
            "Each BlockDigits image stacks a digit over a fixed null patch that carries no information, so the right "
            "answer to 'where is the evidence' is known: on the digit.",
            "The standard model's input gradients put much of their mass on the null patch (feature leakage); the "
            "adversarially trained model's gradients stay on the digit. Try the methods on both models.",
        ),  # fmt: skip
        robust_figure,
        "Why can a standard model's gradient light up the null patch although the patch never changes?",
        "The gradient measures sensitivity, not use: a standard model can react strongly to changes in a region it "
        "never needed. Adversarial training makes the model insensitive to such directions.",
        "Shah, Jain & Netrapalli, Do Input Gradients Highlight Discriminative Features?, NeurIPS 2021",
    ),
    Lesson(
        "cams",
        "Grad-CAM is coarse; HiResCAM and NormGrad are sharper; class sensitivity tells them apart",
        (
            "Class activation maps weight a late layer's channels by the class's gradient. Grad-CAM averages the "
            "gradient over space first, so its map can look alike for very different classes.",
            "HiResCAM multiplies gradient and activation element by element; NormGrad takes norms of their outer "
            "product. Compare each method's map for the top class and the least likely class: the lower ρ, the more "
            "the map depends on the class.",
        ),  # fmt: skip
        cam_figure,
        "A method gives nearly the same map for 'Egyptian cat' and for the least likely class. What is it showing?",
        "What the image contains, not why the model chose a class: a class-insensitive map cannot explain a "
        "decision between classes.",
        "Draelos & Carin (HiResCAM) 2020; Rebuffi et al. (NormGrad), CVPR 2020; Rao et al. (class sensitivity), 2022",
    ),
    Lesson(
        "complexity",
        "What makes a picture look complex: MSG vs MUC",
        (
            "MSG measures structure (the Sobel gradients at four scales); MUC counts distinct colours after quantising "
            "each channel to a few bits. Both come from cheap pixel statistics.",
            "Against human ratings of complexity they behave differently per data set: structure carries scenes, "
            "colour carries art. The scatter plots use the paper's own tables.",
        ),  # fmt: skip
        complexity_figure,
        "Which bit depth makes MUC most predictive, and why not 8 bits?",
        "A middle depth (about 4): at 8 bits nearly every pixel is a distinct colour (noise and gradients count), "
        "at 1–2 bits the count saturates.",
        "Sarıtaş, Dayan, Shen & Nath, Complexity in Complexity, arXiv:2501.15890 (2025)",
    ),
    Lesson(
        "red",
        "What does the word “red” look at? Cross-attention over the denoising steps",
        (
            "A text-to-image model reads the prompt through cross-attention: each image position attends to the words. "
            "DAAM sums these maps over layers and steps into one map per word.",
            "Step through the denoising: early steps attend diffusely, the layout settles within the first few steps, "
            "and the colour word's map lands on the object it colours.",
        ),  # fmt: skip
        red_figure,
        "Why does the attention of “red” settle early?",
        "The layout (where objects go) is decided at high noise, in the first steps; later steps refine texture and "
        "edges, where the text matters less.",
        "Tang et al., What the DAAM: Interpreting Stable Diffusion Using Cross Attention, ACL 2023",
    ),
    Lesson(
        "style",
        "Content vs style: do the object word and the colour word look at different places?",
        (
            "“red” is a property (style) and “circle” an object (content). If the model binds them, both words "
            "should attend to the same region.",
            "Compare their maps and the overlap of their strongest regions for each object of the prompt.",
        ),  # fmt: skip
        style_figure,
        "The colour and shape maps overlap strongly. Does that prove the model binds colour to shape?",
        "It is consistent with binding but not proof: attention shows where a word is read, not how it is used. The "
        "diffusion classifier (last lesson) tests the behaviour itself.",
        "Tang et al., ACL 2023; Rassin et al., Linguistic Binding in Diffusion Models, NeurIPS 2023",
    ),
    Lesson(
        "relations",
        "Does the diffusion model know left from right?",
        (
            "A text-to-image model can classify: the caption under which it denoises the image best wins. Ask it about "
            "a drawn scene under the true caption, the caption with the objects swapped and one with the relation "
            "changed.",
            "If it prefers the true caption over the swapped one, it uses word order and the relation, not only a bag "
            "of words.",
        ),  # fmt: skip
        relation_figure,
        "The swapped caption has the same words as the true one. What would a bag-of-words model do?",
        "Give both the same score: only a model that reads the relation and which object it applies to can prefer "
        "the true caption.",
        'Li et al., "Your Diffusion Model is Secretly a Zero-Shot Classifier", ICCV 2023',
    ),
)
KEYS = tuple(lesson.key for lesson in LESSONS)


def lesson_index() -> int:
    """The lesson named by ``?lesson=`` (its key or its number from 1), else the first."""
    wanted = st.query_params.get("lesson", KEYS[0])
    if wanted in KEYS:
        return KEYS.index(wanted)
    if str(wanted).isdigit() and 1 <= int(wanted) <= len(KEYS):
        return int(wanted) - 1
    st.warning(f"No lesson {wanted!r}; showing the first. Lessons: {', '.join(KEYS)}.")
    return 0


def go_to(index: int) -> None:
    st.query_params["lesson"] = KEYS[index % len(KEYS)]


PRESENTER_CSS = """
<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header {display: none !important;}
.block-container {max-width: 1200px; padding-top: 1.5rem;}
.block-container p, .block-container li, .block-container label {font-size: 1.35rem !important; line-height: 1.5;}
.block-container h1 {font-size: 2.6rem !important;}
</style>
"""


def show(lesson: Lesson, number: int, device: str) -> None:
    """The lesson; its figure as a job in its models' lines (place in the line, Cancel, out-of-memory message)."""
    st.header(f"{number}. {lesson.title}")
    for paragraph in lesson.paragraphs:
        st.markdown(paragraph)
    with jobs.heavy(f"lesson {number}", cancel_message="Stopped; change a control to draw the figure again."):
        lesson.figure(device)
    with st.expander(f"**Question:** {lesson.question}", icon=":material/help:"):
        st.markdown(lesson.answer)
    st.caption(lesson.citation)
