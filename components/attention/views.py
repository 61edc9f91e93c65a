"""The Cross-attention lens's views: word strips, faded overlays, mass over time, content vs style, downloads.

:func:`results_view` is an st.fragment: every display control re-slices the stored trace through the cached
services, so moving a slider reruns only the results and never regenerates.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image
from plotly.subplots import make_subplots

from components import probe as probe_widgets
from components.attention import CITATION_CONCEPTS, CITATION_COW, CITATION_DAAM, controls, services
from components.attention.controls import GenerationRequest, Slice
from components.views import heatmap_figure
from glimpse.attention import ConceptGeneration, GenerationResult
from glimpse.attention.export import attention_npz_bytes
from glimpse.attention.metrics import binarize, content_style_separation
from glimpse.display import SEQUENTIAL, colour_range, display_size, resize_image, resize_map, shown_values
from glimpse.probe import CONCEPT_KIND, word_steps

PROBE = probe_widgets.Keys("attention_probe_x", "attention_probe_y")
OVERLAY_SIDE = 224  # overlay_figure's drawing grid: the longer side of the map's display


# --------------------------------------------------------------------------------------------- figures
def _pixels(image: np.ndarray, side: int = 256) -> np.ndarray:
    """Whole-number upscaling (nearest neighbour, :func:`glimpse.display.resize_image`) so a 32×32 generation
    stays crisp on screen."""
    h, w = image.shape[:2]
    k = max(1, side // max(h, w))
    return resize_image(image, (h * k, w * k))


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def mask_overlay(image: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
    """The image dimmed, with A-only pixels orange, B-only cyan and shared pixels white (masks at image size)."""
    if mask_a.shape != image.shape[:2]:
        mask_a, mask_b = (resize_map(m, image.shape[:2], resample="nearest") > 0.5 for m in (mask_a, mask_b))
    out = image.astype(np.float32) * 0.35 + 255 * 0.15
    out[mask_a & ~mask_b] = (255, 140, 0)
    out[mask_b & ~mask_a] = (0, 220, 255)
    out[mask_a & mask_b] = (255, 255, 255)
    return out.round().astype(np.uint8)


def strip_figure(
    maps: np.ndarray, labels: list[str], *, normalise: bool, height: int | None = None, label: str = "attention"
) -> go.Figure:
    """One small heatmap per word with one shared colour bar: each word min-max scaled to [0, 1], or the raw
    maps (non-negative attention) from 0 to the largest value of any word (:mod:`glimpse.display`); ``label``
    names the raw maps' colour bar."""
    n = len(maps)
    # square panels across a ~1100 px wide page: the height follows the number of words
    height = height or int(min(260, max(110, 1050 / max(n, 1))) + 30)
    mode = "minmax" if normalise else "positive"
    shown = np.stack([shown_values(np.asarray(m, dtype=np.float32), mode) for m in maps])
    cmin, cmax, _ = colour_range(shown, mode)  # one colour bar for every word
    fig = make_subplots(rows=1, cols=n, subplot_titles=labels, horizontal_spacing=0.012)
    for k in range(n):
        fig.add_trace(
            go.Heatmap(
                z=shown[k],
                coloraxis="coloraxis",
                hovertemplate=f"{labels[k]}<br>x=%{{x}}, y=%{{y}}<br>value=%{{z:.4g}}<extra></extra>",
            ),
            row=1,
            col=k + 1,
        )
        fig.update_yaxes(scaleanchor=f"x{k + 1 if k else ''}", row=1, col=k + 1)
    fig.update_yaxes(autorange="reversed", visible=False)
    fig.update_xaxes(visible=False)
    fig.update_annotations(font_size=12)
    fig.update_layout(
        coloraxis=dict(
            colorscale=SEQUENTIAL,
            cmin=cmin,
            cmax=cmax,
            colorbar=dict(title="min-max" if normalise else label, thickness=10, len=0.9),
        ),
        height=height,
        margin=dict(l=0, r=0, t=24, b=0),
    )
    return fig


def summed_label(lo: int, hi: int) -> str:
    """The colour-bar label of a map summed over steps ``lo..hi`` (0-based, inclusive), as DAAM sums them."""
    n = hi - lo + 1
    return f"attention at step {lo + 1}" if n == 1 else f"attention, summed over {n} steps ({lo + 1}–{hi + 1})"


def overlay_figure(
    values: np.ndarray,
    image: np.ndarray,
    *,
    title: str = "",
    label: str,
    height: int,
    zmin: float = 0.0,
    zmax: float | None = None,
    opacity: float = 0.85,
    colorscale: str = SEQUENTIAL,
    colorbar_side: str = "right",
    max_side: int = 224,
) -> go.Figure:
    """A word's attention over the image, from ``zmin`` (transparent: the image shows through, rather than
    tinted with the colour map's low colour) to ``zmax`` (default: the map's largest value); ``label`` names
    the colour bar (summed over steps, or one step: their scales differ tenfold). Compare's attention panels
    are drawn by this function too."""
    if zmax is None:
        top = float(np.nanmax(values)) if np.size(values) else 0.0
        zmax = top if top > 0 else 1.0
    return heatmap_figure(
        values,
        image=image,
        title=title,
        colorscale=colorscale,
        zmin=zmin,
        zmax=zmax,
        opacity=opacity,
        fade=True,
        colorbar_title=label,
        colorbar_side=colorbar_side,
        height=height,
        max_side=max_side,
    )


def mass_figure(mass: np.ndarray, labels: list[str], timesteps: np.ndarray, span: tuple[int, int]) -> go.Figure:
    """Per-word attention mass over the generation; the selected timestep range is shaded."""
    steps = np.arange(1, mass.shape[1] + 1)
    fig = go.Figure()
    for k, label in enumerate(labels):
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=mass[k],
                mode="lines+markers",
                name=label,
                customdata=timesteps,
                hovertemplate=f"{label}<br>step %{{x}} (t=%{{customdata}})<br>mass=%{{y:.4g}}<extra></extra>",
            )
        )
    fig.add_vrect(x0=span[0] + 0.5, x1=span[1] + 1.5, fillcolor="grey", opacity=0.12, line_width=0)
    fig.update_layout(
        height=300,
        margin=dict(l=0, r=0, t=10, b=0),
        xaxis_title="denoising step (noisy → clean)",
        yaxis_title="attention mass",
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def iou_matrix_figure(matrix: np.ndarray, labels: list[str]) -> go.Figure:
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=labels,
            y=labels,
            zmin=0.0,
            zmax=1.0,
            colorscale="Blues",
            colorbar=dict(title="IoU", thickness=10),
            hovertemplate="%{y} × %{x}<br>IoU=%{z:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=320, margin=dict(l=0, r=0, t=10, b=0))
    return fig


# --------------------------------------------------------------------------------------------- results
@st.fragment
def results_view(request: GenerationRequest, result: GenerationResult) -> None:
    """Everything shown after Generate (the session's stored generation); each control re-slices the trace
    (cached; no regeneration)."""
    words = tuple(result.trace.words)
    labels = controls.word_labels(words)
    # widget keys carry the result's id: a new result (other T, words, layers) starts with fresh controls
    sfx = hashlib.sha1(request.key.encode()).hexdigest()[:8]

    st.subheader("What each word attends to")
    sl = controls.slice_controls(result, sfx)
    if sl is None:
        return
    maps = services.sliced_maps(result, sl)
    normalise = controls.normalise_toggle()
    n = sl.hi - sl.lo + 1  # (a one-line label: the strip's colour bar is ~100 px tall)
    short = f"step {sl.lo + 1}" if n == 1 else f"Σ {n} steps"
    strip = strip_figure(maps, labels, normalise=normalise, label=short)
    st.plotly_chart(strip, key="attention_strip")
    if isinstance(result, ConceptGeneration):
        concept_panel(result, maps, words, sl, sfx, normalise=normalise, label=short)
    w = controls.word_picker(words, labels, sfx)
    every_step = services.step_maps(result, sl)
    frames = every_step[:, w]
    xy = probe_widgets.pixel_inputs(result.image.shape, PROBE, "every word's map")
    gif = overlay_row(result, maps, frames, w, labels[w], sl, sfx, xy)
    probe_view(result, maps, every_step, labels, sl, xy)

    st.subheader("Attention mass over time")
    mass = services.mass_over_time(result, sl)
    st.plotly_chart(mass_figure(mass, labels, result.trace.timesteps, (sl.lo, sl.hi)), key="attention_mass")
    separation_panel(maps, words, labels, sfx, result.image)
    downloads(result, maps, mass, frames, gif, words[w], sl)


def concept_panel(result: ConceptGeneration, maps: np.ndarray, words: tuple[str, ...], sl: Slice, sfx: str, *,
                  normalise: bool, label: str) -> None:  # fmt: skip
    """ConceptAttention's maps over the same slice, and one concept beside the cross-attention map of its word."""
    st.subheader("ConceptAttention: where each concept is")
    st.caption(
        f"{CITATION_CONCEPTS}. Each concept token passes through every joint block beside the prompt (the image is "
        "the same as without it); a pixel's map values are the softmax over the concepts of its attention output "
        "against theirs, so the concepts share every pixel. Summed over the same steps as the maps above."
    )
    concepts = result.concepts.words
    shown = services.concept_maps(result, sl)
    st.plotly_chart(strip_figure(shown, list(concepts), normalise=normalise, label=label), key="concept_strip")
    k = st.selectbox("Concept to compare", range(len(concepts)), format_func=lambda i: concepts[i],
                     key=f"concept_pick_{sfx}")  # fmt: skip
    c1, c2 = st.columns(2)
    with c1:
        fig = overlay_figure(shown[k], result.image, title=f"ConceptAttention: “{concepts[k]}”", label=label,
                             height=300, max_side=OVERLAY_SIDE)  # fmt: skip
        st.plotly_chart(fig, key="concept_overlay")
    word = next((i for i, w in enumerate(words) if w.lower() == concepts[k].lower()), None)
    with c2:
        if word is None:
            st.caption(f"“{concepts[k]}” is not a word of the prompt: no cross-attention map to set beside it.")
        else:
            fig = overlay_figure(maps[word], result.image, title=f"Cross-attention: “{words[word]}”", label=label,
                                 height=300, max_side=OVERLAY_SIDE)  # fmt: skip
            st.plotly_chart(fig, key="concept_cross_overlay")
    stem = "_".join(result.trace.prompt.split())[:60] or "attention"
    st.download_button(
        "Concept maps (NPZ)",
        lambda: attention_npz_bytes(result.concepts, shown, image=result.image, slices=sl.meta()),
        f"{stem}_concepts.npz", "application/octet-stream", key="concept_dl_npz", on_click="ignore",
    )  # fmt: skip


def overlay_row(
    result: GenerationResult, maps: np.ndarray, frames: np.ndarray, w: int, label: str, sl: Slice, sfx: str, xy=None
) -> bytes:
    """The image with the GIF, the word's overlay over the slice, and the scrubber over single steps; a click on
    either overlay selects the probed pixel ``xy`` (marked on both)."""
    trace = result.trace
    grid = display_size(maps.shape[-2:], OVERLAY_SIDE, enlarge=False)

    def chart(fig: go.Figure, key: str) -> None:
        fig = probe_widgets.clickable(fig, grid, xy, result.image.shape)
        probe_widgets.chart(fig, key, grid, result.image.shape, PROBE)

    o1, o2, o3 = st.columns(3)
    with o1:
        st.image(_pixels(result.image), caption=f"“{trace.prompt}” · seed {trace.seed} · {trace.steps} steps")
        gif = services.scrubber_gif_cached(
            frames, result.image, tuple(f"{i + 1}: t={int(t)}" for i, t in enumerate(trace.timesteps))
        )
        with st.expander("Animation over timesteps (GIF)"):
            st.image(gif, caption=f"“{label}”, one frame per denoising step, each frame min-max scaled")
    with o2:
        title = f"“{label}”, steps {sl.lo + 1}–{sl.hi + 1}"
        fig = overlay_figure(maps[w], result.image, title=title, label=summed_label(sl.lo, sl.hi), height=330,
                             max_side=OVERLAY_SIDE)  # fmt: skip
        chart(fig, "attention_overlay")
    with o3:
        i = controls.scrub_step(len(trace.timesteps), sfx)
        title = f"“{label}” at step {i} (t={int(trace.timesteps[i - 1])})"
        fig = overlay_figure(frames[i - 1], result.image, title=title, label=f"attention at step {i}", height=260,
                             max_side=OVERLAY_SIDE)  # fmt: skip
        chart(fig, "attention_scrub_fig")
    return gif


def probe_view(result: GenerationResult, maps: np.ndarray, every_step: np.ndarray, labels: list[str], sl: Slice,
               xy) -> None:  # fmt: skip
    """The words by attention at the probed pixel over the slice, and, when asked, at every single step; with
    ConceptAttention, each concept's map there too (its value is the concept's share of the pixel)."""
    named = [(label, "attention", m, {"word": label}) for label, m in zip(labels, maps)]
    if isinstance(result, ConceptGeneration):
        shown = services.concept_maps(result, sl)  # cached: the concept panel drew the same slice
        named += [(f"concept: {c}", CONCEPT_KIND, m, {"concept": c}) for c, m in zip(result.concepts.words, shown)]
    note = f"Maps summed over steps {sl.lo + 1}–{sl.hi + 1}, at {maps.shape[-1]}×{maps.shape[-2]} over the image."
    if probe_widgets.panel(result.image.shape, named, xy, "attention_probe", note) is None:
        return
    if st.toggle("Per timestep", key="attention_probe_steps", help="Each word's share at this pixel, step by step"):
        rows = word_steps(result.image.shape[:2], every_step, labels, *xy, timesteps=result.trace.timesteps)
        table = pd.DataFrame(rows)
        shares = {c: "{:.1%}" for c in table.columns if c.startswith("share: ")}
        st.dataframe(table.style.format(shares), hide_index=True, key="attention_probe_per_step")


def downloads(result: GenerationResult, maps, mass, frames, gif: bytes, word: str, sl: Slice) -> None:
    st.subheader("Downloads")
    trace = result.trace
    d1, d2, d3 = st.columns(3)
    stem = "_".join(trace.prompt.split())[:60] or "attention"
    d1.download_button(
        "Image (PNG)", png_bytes(result.image), f"{stem}.png", "image/png", key="attention_dl_png", on_click="ignore"
    )
    d2.download_button(
        "Maps (NPZ)",
        # built only when clicked: the NPZ is the largest download and most reruns never need it
        lambda: attention_npz_bytes(trace, maps, image=result.image, slices=sl.meta(), mass=mass, frames=frames),
        f"{stem}_attention.npz",
        "application/octet-stream",
        key="attention_dl_npz",
        on_click="ignore",
    )
    d3.download_button(
        "Scrubber (GIF)", gif, f"{stem}_{word}.gif", "image/gif", key="attention_dl_gif", on_click="ignore"
    )


def separation_panel(maps: np.ndarray, words: tuple[str, ...], labels: list[str], sfx: str, image: np.ndarray) -> None:
    """Content vs style ("The Cow of Rembrandt"): IoU of two words' masks against the other pairs."""
    st.subheader("Content vs style")
    st.caption(
        "Binarise each word map at a threshold and compare the overlap (IoU) of two words with the mean "
        "overlap of all other word pairs of the prompt: Δ = baseline − IoU(A, B). Δ > 0: the two words are "
        f"attended to in more separate regions than usual. After {CITATION_COW}; maps as in {CITATION_DAAM}."
    )
    if len(words) < 3:
        st.info("The baseline needs another word pair: use a prompt of at least 3 words.")
        return
    c = controls.separation_controls(words, labels, sfx)
    a, b, t = c.a, c.b, c.threshold
    try:
        sep = content_style_separation(maps, words, a, b, threshold=t, mode=c.mode)
    except ValueError as err:
        st.error(f"{err}.")
        return
    m1, m2, m3 = st.columns(3)
    m1.metric(f"IoU({labels[a]}, {labels[b]})", f"{sep.iou:.3f}")
    m2.metric(
        "Baseline IoU (other pairs)",
        f"{sep.baseline_mean:.3f} ± {sep.baseline_std:.3f}",
        help=f"{sep.baseline_pairs} pairs",
    )
    m3.metric("Δ = baseline − IoU", f"{sep.delta:+.3f}")
    k1, k2 = st.columns([1, 2])
    with k1:
        st.image(
            _pixels(mask_overlay(image, binarize(maps[a], t, mode=c.mode), binarize(maps[b], t, mode=c.mode))),
            caption=f"Masks at t = {t:.2f}: {labels[a]} only (orange), {labels[b]} only (cyan), both (white)",
        )
    with k2:
        st.plotly_chart(iou_matrix_figure(sep.pair_iou, labels), key="cs_matrix")
