"""The lessons' figures and the lesson itself. Each figure draws its controls (:mod:`components.lessons.controls`),
reads cached services (:mod:`components.lessons.services`) and draws; every map carries its colour bar, and
regions and rank correlations are :mod:`glimpse.map_metrics`' (the rules every lens shares)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components import jobs, loaders
from components.lessons import CAMS, CLASSIFIER, DIGITS, PROMPT, SANITY_METHODS, controls, services
from components.lessons.controls import method_label
from glimpse.display import auto_scale, resize_map, to_rgb, with_colour_bar
from glimpse.map_metrics import iou, spearman, top_k_mask

if TYPE_CHECKING:
    from components.lessons.content import Lesson

SIDE = 200
#: the share of pixels in a map's strongest region (lesson 7), in percent
TOP_REGION = 20.0
PRESENTER_CSS = """
<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header {display: none !important;}
.block-container {max-width: 1200px; padding-top: 1.5rem;}
.block-container p, .block-container li, .block-container label {font-size: 1.35rem !important; line-height: 1.5;}
.block-container h1 {font-size: 2.6rem !important;}
</style>
"""
_MARGIN = dict(l=10, r=10, t=30, b=10)


def heat(values: np.ndarray, side: int = SIDE, *, absolute: bool = True) -> np.ndarray:
    """A map as an RGB image (absolute values on a sequential scale by default) with its colour bar below."""
    v = np.abs(values) if absolute else values
    cmap, lo, hi = auto_scale(v, clip=99.5)  # the top 0.5 % saturate, as the saliency page's default
    h, w = v.shape
    size = (side, max(1, round(side * w / h)))
    return with_colour_bar(to_rgb(resize_map(v.astype(np.float32), size), lo, hi, cmap), lo, hi, cmap)


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


# ----------------------------------------------------------------------------------------------- figures
def smoothgrad_figure(device: str) -> None:
    samples, noise = controls.smoothgrad()
    grad, smooth = services.smoothgrad_maps(device, samples, noise)
    cols = st.columns(3)
    cols[0].image(services.chelsea(), caption="the image", width=SIDE)
    cols[1].image(heat(grad), caption="|gradient|", width=SIDE)
    cols[2].image(heat(smooth), caption=f"|SmoothGrad| ({samples} × σ {noise})", width=SIDE)


def sanity_figure(device: str) -> None:
    index = controls.sanity_image()
    results = {m: services.sanity(device, m, index) for m in SANITY_METHODS}
    stages = results["gradient"].stages
    stage = controls.sanity_stage(stages)
    cols = st.columns(3)
    cols[0].image(services.digit(index)[0], caption="the image", width=110)
    for col, (m, r) in zip(cols[1:], results.items()):
        caption = f"{method_label(m)} · ρ to trained {r.spearman[stage]:.2f}"
        col.image(heat(r.maps[stage], 180), caption=caption, width=110)
    fig = go.Figure(
        [
            go.Scatter(x=list(stages), y=r.spearman, name=method_label(m), mode="lines+markers")
            for m, r in results.items()
        ]
    )
    fig.update_layout(height=260, margin=_MARGIN, yaxis_title="Spearman ρ to the trained map",
                      title="Maps of the randomised model vs the trained one")  # fmt: skip
    st.plotly_chart(fig, width="stretch")
    ends = ", ".join(f"{method_label(m)} ρ = {r.spearman[-1]:.2f}" for m, r in results.items())
    st.caption(f"With every stage randomised: {ends}.")


def robust_figure(device: str) -> None:
    index, method = controls.robust()
    image, signal, label = services.digit(index)
    cols = st.columns(3)
    cols[0].image(image, caption=f"digit {label} (signal block {'top' if signal[:32].any() else 'bottom'})", width=110)
    for col, model_id in zip(cols[1:], DIGITS):
        (values,) = services.digit_map(model_id, device, index, method)
        mass = np.abs(values)
        share = float(mass[signal].sum() / max(mass.sum(), 1e-12))
        col.image(heat(values, 180), caption=f"{model_id.split('-')[1]} · {share:.0%} on the digit", width=110)


def cam_figure(device: str) -> None:
    bundle = loaders.classifier(CLASSIFIER, device)
    top, bottom = services.extremes(device)
    method = controls.cam_method()
    maps = {m: (services.cam_map(device, m, top), services.cam_map(device, m, bottom)) for m in CAMS}
    rows = [{"method": method_label(m), "ρ(top class, least likely class)": spearman(*maps[m])} for m in CAMS]
    first, last = maps[method]
    cols = st.columns(3)
    cols[0].image(services.chelsea(), caption="the image", width=SIDE)
    cols[1].image(heat(first), caption=f"{method_label(method)} · {bundle.labels[top]}", width=SIDE)
    cols[2].image(heat(last), caption=f"{method_label(method)} · {bundle.labels[bottom]}", width=SIDE)
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def complexity_figure(device: str) -> None:
    dataset, bits = controls.complexity()
    table = services.ratings(dataset)
    cols = st.columns(2)
    for col, feature in zip(cols, ["MSG", f"MUC{bits}"]):
        rho = table[[feature, "complexity"]].corr(method="spearman").iloc[0, 1]
        fig = go.Figure(go.Scatter(x=table[feature], y=table["complexity"], mode="markers", marker=dict(size=4)))
        fig.update_layout(height=280, margin=_MARGIN, title=f"{feature}: Spearman ρ = {rho:.2f}",
                          xaxis_title=feature, yaxis_title="human rating")  # fmt: skip
        col.plotly_chart(fig, width="stretch")


def red_figure(device: str) -> None:
    from glimpse.attention import word_maps, word_mass_over_time

    result = services.attention(device, PROMPT, 0)
    trace = result.trace
    step = controls.denoising_step(len(trace.timesteps))
    red = trace.words.index("red")
    cols = st.columns(3)
    cols[0].image(result.image, caption=PROMPT, width=160)
    at_step = word_maps(trace, timesteps=(step - 1, step - 1))[red]
    overall = word_maps(trace)[red]
    cols[1].image(heat(at_step, 160), caption=f"“red” at step {step} (t = {int(trace.timesteps[step - 1])})", width=160)
    cols[2].image(heat(overall, 160), caption="“red” over all steps", width=160)
    mass = word_mass_over_time(trace)
    fig = go.Figure([go.Scatter(y=mass[k], name=w, mode="lines") for k, w in enumerate(trace.words)])
    fig.update_layout(height=250, margin=_MARGIN, title="Each word's share of the attention", xaxis_title="step")
    st.plotly_chart(fig, width="stretch")


def style_figure(device: str) -> None:
    from glimpse.attention import word_maps

    result = services.attention(device, PROMPT, 0)
    trace = result.trace
    maps = word_maps(trace)
    colour, shape = controls.object_pair()
    c, s = maps[trace.words.index(colour)], maps[trace.words.index(shape)]
    overlap = iou(top_k_mask(c, TOP_REGION), top_k_mask(s, TOP_REGION))
    cols = st.columns(3)
    cols[0].image(result.image, caption=PROMPT, width=160)
    cols[1].image(heat(c, 160), caption=f"“{colour}” (style)", width=160)
    cols[2].image(heat(s, 160), caption=f"“{shape}” (content)", width=160)
    st.caption(f"Overlap of their top-{TOP_REGION:g} % regions (IoU): {overlap:.2f}")


def relation_figure(device: str) -> None:
    scenes = [PROMPT, "a green triangle above a red circle", "a yellow square to the right of a green triangle"]
    caption, samples = controls.relation(scenes)
    image, result = services.relation_scores(device, caption, samples, 0)
    cols = st.columns([1, 2])
    cols[0].image(image, caption=f"drawn: {caption}", width=160)
    fig = go.Figure(go.Bar(x=result.probabilities, y=list(result.prompts), orientation="h"))
    fig.update_layout(height=220, margin=_MARGIN, title="Which caption explains it best?",
                      xaxis_title="probability", yaxis_autorange="reversed")  # fmt: skip
    cols[1].plotly_chart(fig, width="stretch")
