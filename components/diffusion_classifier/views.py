"""The Diffusion classifier's views: the winner and the table, error curves over timesteps, where the winner and
the runner-up differ, the winner's cross-attention and the shapes classifier's Grad-CAM (every map with its
colour bar), and the downloads. They draw the stored result; the two extra maps come from cached services."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components import probe as probe_widgets
from components.diffusion_classifier import SHOW, controls, services, state
from components.diffusion_classifier.controls import ClassifyRequest
from components.views import heatmap_figure
from glimpse import npzfile
from glimpse.diffusion_classifier import DiffusionClassification
from glimpse.display import (
    DIVERGING,
    SEQUENTIAL,
    colour_range,
    mark_pixel,
    overlay,
    resize_image,
    resize_map,
    with_colour_bar,
)
from glimpse.probe import classification_entry
from models.registry import ModelLoadError

DIFF_SIDE = 128  # side the difference map is drawn at (a plotly heatmap: every cell is sent to the browser)
DIFF_CLIP = 99.0  # the difference map's colour bar ends at this percentile of |difference|
PROBE = probe_widgets.Keys("dc_probe_x", "dc_probe_y")


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


def attention_overlay(image: np.ndarray, values: np.ndarray, xy=None) -> np.ndarray:
    """A word's attention over the image from 0 to its largest value, faded (:func:`glimpse.display.overlay`):
    where the word draws no attention the image is left as it is, not tinted with the colour map's purple. Its
    colour bar is drawn below the picture; the probed pixel ``xy`` is ringed."""
    top = float(np.max(values)) or 1.0
    shown = overlay(_big(image), values, 0.0, top, SEQUENTIAL, alpha=0.85, fade=True)
    return with_colour_bar(mark_pixel(shown, xy, image.shape), 0.0, top)


def saliency_overlay(image: np.ndarray, values: np.ndarray, xy=None) -> np.ndarray:
    """A signed map (Grad-CAM) over the image on the diverging scale symmetric about 0, its colour bar below; the
    probed pixel ``xy`` is ringed."""
    lo, hi, _ = colour_range(values, "signed")
    shown = mark_pixel(overlay(_big(image), values, lo, hi, DIVERGING, alpha=0.6), xy, image.shape)
    return with_colour_bar(shown, lo, hi, DIVERGING)


def results_view() -> None:
    request, result = state.stored()
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
    xy = probe_widgets.pixel_inputs(request.image.shape, PROBE, "the difference, the attention and the saliency")
    difference = classification_entry(result, request.image_name)
    maps = [(difference.name, difference.kind, difference.values, difference.meta)]
    c1, c2, c3 = st.columns(3)
    with c1:
        grid = (DIFF_SIDE, DIFF_SIDE)
        fig = probe_widgets.clickable(
            difference_figure(request.image, difference.values), grid, xy, request.image.shape
        )
        probe_widgets.chart(fig, "dc_difference", grid, request.image.shape, PROBE)
        st.caption(
            f"Where **{winner}** fits better (red) or worse (blue) than **{result.prompts[ranking[1]]}**: the "
            "runner-up's per-pixel error minus the winner's, over the timesteps both were scored at. The bar "
            f"ends at the {DIFF_CLIP:g}th percentile of |difference| (larger values take its end colour). Click it "
            "(or type x and y) to read one pixel in every map here."
        )
    with c2:
        maps += attention_view(request, winner, xy)
    with c3:
        maps += saliency_view(request, winner, xy)
    probe_widgets.panel(request.image.shape, maps, xy, "dc_probe", "The difference is at the model's resolution, "
                        "the attention at the generated size, the saliency at the shapes classifier's input.")  # fmt: skip
    downloads(request, result, difference.values)


def attention_view(request: ClassifyRequest, winner: str, xy=None) -> list:
    """The winning prompt's cross-attention of a chosen word; returns every word's map for the probe (none if
    the model has none)."""
    try:
        words, maps = services.winner_attention(
            request.model_id, request.device, request.image, winner, request.samples[-1], request.seed
        )
    except (ValueError, RuntimeError) as err:
        st.info(f"No attention for this model: {err}")
        return []
    word = controls.word_picker(words)
    st.image(attention_overlay(request.image, maps[word], xy), width="stretch")
    st.caption(f"Cross-attention of **{words[word]}** while the image is denoised under the winning prompt.")
    return [(f"attention: {w}", "attention", m, {"word": w}) for w, m in zip(words, maps)]


def saliency_view(request: ClassifyRequest, winner: str, xy=None) -> list:
    """The shapes classifier's Grad-CAM of the winner's first object; returns that map for the probe."""
    from glimpse.diffusion_classifier.negatives import parse

    parsed = parse(winner)
    if request.model_id != "shapes-t2i" or parsed is None:
        st.caption("The shapes classifier's saliency is shown for the embedded model's prompts.")
        return []
    colour, shape = parsed[0][0]
    label = f"{colour} {shape}"
    try:
        values = services.shapes_saliency(request.device, request.image, label)
    except (ValueError, ModelLoadError) as err:
        st.info(f"No saliency: {err}")
        return []
    st.image(saliency_overlay(request.image, values, xy), width="stretch")
    st.caption(f"The shapes classifier's Grad-CAM for **{label}** (the discriminative view of the same image).")
    return [(f"saliency: Grad-CAM ({label})", "saliency", values, {})]


def downloads(request: ClassifyRequest, result: DiffusionClassification, difference: np.ndarray) -> None:
    c1, c2 = st.columns(2)
    doc = {"image": request.image_name, "model": request.model_id, **result.summary(), "meta": result.meta()}
    c1.download_button("JSON of the scores", json.dumps(doc, indent=2), "diffusion_classifier.json", "application/json")
    arrays = {"errors": result.errors, "timesteps": list(result.timesteps), "difference": difference}
    meta = {"format": "glimpse-diffusion-classifier", "version": 1, **result.meta()}
    c2.download_button(
        "NPZ of the errors and the difference map",
        data=lambda: npzfile.write(arrays, meta),
        file_name="diffusion_classifier.npz",
        mime="application/octet-stream",
        on_click="ignore",
    )
