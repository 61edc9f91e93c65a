"""The Model lab page: what a class or a channel responds to, its facets, its top images, and blind spots.

Controls → one cached service per tab (feature visualisation, facets, data-set examples, level-set traversal),
each run as a job in the model's line (:func:`components.jobs.heavy`) with a progress bar → views.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from components import jobs, loaders, session_results
from components.image_input import BY_DIGEST, IMAGE_LIMITS, ImageChoice
from glimpse.display import resize_image
from glimpse.images import MAX_PIXELS, ImageLoadError, load_image, png_bytes, sample_images
from glimpse.lab import (
    Facets,
    Objective,
    Traversal,
    level_set_traversal,
    multifaceted,
    top_examples,
    triangle_confidence,
    visualize,
)
from glimpse.lab.blindspot import rounding_note, traversal_npz_bytes
from glimpse.lab.common import to_tensor, to_uint8, written_probabilities
from models.lab import class_images, late_layer, model_input, sample_crops

VIS_CITATION = 'Olah, Mordvintsev & Schubert, "Feature Visualization", Distill 2017 (lucid\'s parameterisation)'
FACETS_CITATION = 'Nguyen, Yosinski & Clune, "Multifaceted Feature Visualization", 2016'
BLIND_CITATION = 'Balasubramanian et al., "Exploring Geometry of Blind Spots in Vision Models", NeurIPS 2023'
SHOW = 224
KEYS = {"vis": "lab_vis", "facets": "lab_facets", "examples": "lab_examples", "blind": "lab_blind"}


@dataclass(frozen=True)
class Pool:
    """Images for facets or examples: their names, pixels and a digest (the cache key)."""

    names: tuple[str, ...]
    images: tuple[np.ndarray, ...]
    digest: str


BY_POOL = {Pool: lambda pool: pool.digest}


@dataclass(frozen=True)
class WrittenEnd:
    """The traversal's files, as the downloads hold them, and what the model gives the end image re-read.

    ``png``: the end point at the model's input size (lossless, the image the model was given); ``npz``: the
    float points and confidences (:func:`glimpse.lab.blindspot.traversal_npz_bytes`); ``view``: the end point
    upsampled to the source's size (for looking at only). ``confidence``: the source class's probability for
    ``png`` decoded by :mod:`glimpse.images` and passed through the model's preprocessing; ``label`` and
    ``top_probability``: the re-read image's top class; ``note``: what 8-bit rounding did, when it moved it.
    """

    png: bytes
    npz: bytes
    view: bytes
    confidence: float
    label: str
    top_probability: float
    note: str | None


def written_end(tr: Traversal, source: np.ndarray, bundle) -> WrittenEnd:
    """Write the end point's files and re-read the PNG through the model's preprocessing (hold the model's lock)."""
    png = png_bytes(tr.end)
    probs = written_probabilities(png, bundle.model, bundle.preprocess, model_input(bundle))
    top = int(probs.argmax())
    view = png_bytes(to_uint8(to_tensor(tr.end, None, "cpu"), source.shape[:2]))
    conf = float(probs[tr.source_class])
    return WrittenEnd(png, traversal_npz_bytes(tr), view, conf, bundle.labels[top], float(probs[top]),
                      rounding_note(tr, conf))  # fmt: skip


@contextmanager
def _stepping(bundle, label: str):
    """The progress bar of a loop over optimisation steps (jobs.bar), which after every step also lets any session
    waiting for the model go first (``yield_turn``: nothing of the loop is installed on the model between
    steps), so a long optimisation holds the line one step at a time."""
    with jobs.bar(label, unit="step") as report:

        def progress(done: int, total: int) -> None:
            report(done, total)
            bundle.lock.yield_turn()

        yield progress


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


# ------------------------------------------------------------------------------------------- services
@st.cache_data(max_entries=16, show_spinner=False)
def visualization(model_id: str, device: str, objective: Objective, steps: int, side: int | None, seed: int):
    bundle = loaders.classifier(model_id, device)
    with _stepping(bundle, "Optimising") as progress, bundle.lock:
        return visualize(
            bundle.model, objective, model_input(bundle).resized(side), steps=steps, seed=seed, progress=progress
        )


@st.cache_data(max_entries=8, show_spinner=False, hash_funcs=BY_POOL)
def facets(model_id: str, device: str, class_index: int, pool: Pool, k: int, steps: int, side: int | None, seed: int):
    bundle = loaders.classifier(model_id, device)
    with _stepping(bundle, "Optimising the facets") as progress, bundle.lock:
        return multifaceted(bundle.model, class_index, list(pool.images), model_input(bundle).resized(side),
                            layer=late_layer(bundle), facets=k, steps=steps, seed=seed, progress=progress)  # fmt: skip


@st.cache_data(max_entries=8, show_spinner=False, hash_funcs=BY_POOL)
def examples(model_id: str, device: str, layer: str, channel: int, pool: Pool, top: int):
    bundle = loaders.classifier(model_id, device)
    with bundle.lock:
        return top_examples(bundle.model, layer, channel, list(pool.images), model_input(bundle), top=top)


@st.cache_data(max_entries=8, show_spinner=False, hash_funcs=BY_DIGEST)
def traversal(model_id: str, device: str, source: ImageChoice, target: ImageChoice, steps: int, step_size: float,
              pthresh: float, seed: int) -> tuple[Traversal, np.ndarray, np.ndarray, WrittenEnd]:  # fmt: skip
    bundle = loaders.classifier(model_id, device)
    inp = model_input(bundle)
    with _stepping(bundle, "Traversing") as progress:
        with bundle.lock:
            tr = level_set_traversal(bundle.model, source.pixels, target.pixels, inp, steps=steps,
                                     step_size=step_size, pthresh=pthresh, seed=seed, progress=progress)  # fmt: skip
            coords, conf = triangle_confidence(bundle.model, source.pixels, target.pixels, tr.end, inp,
                                               tr.source_class, resolution=9)  # fmt: skip
            written = written_end(tr, source.pixels, bundle)
        return tr, coords, conf, written


def run(kind: str, label: str, fn) -> None:
    """Run ``fn`` as a job and store its result; a bad parameter becomes an st.error naming it."""
    try:
        with jobs.heavy(label, cancel_message=f"{label.capitalize()} cancelled; the previous result is kept."):
            session_results.put(KEYS[kind], fn())
    except ValueError as err:
        st.error(f"{err}. Change it and press the button again.")


# ------------------------------------------------------------------------------------------- controls
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
        digest = "|".join(f"{n}:{hashlib.sha1(im.tobytes()).hexdigest()}" for n, im in zip(names, images))
        return Pool(tuple(names), tuple(images), digest)
    return offline_pool(bundle.model_id, str(bundle.device), class_index)


@st.cache_data(max_entries=8, show_spinner="Ranking the offline pictures…")
def offline_pool(model_id: str, device: str, class_index: int | None) -> Pool:
    """The offline pictures (cached: ranking the crops runs the model on each)."""
    if class_index is None:
        images = sample_crops()
        return Pool(tuple(f"sample crop {i}" for i in range(len(images))), tuple(images), "sample-crops")
    bundle = loaders.classifier(model_id, device)
    with bundle.lock:
        images = class_images(bundle, class_index, count=24)
    return Pool(tuple(f"offline {i}" for i in range(len(images))), tuple(images), f"class-{model_id}-{class_index}")


# ------------------------------------------------------------------------------------------- views
def visualization_view(vis, bundle) -> None:
    left, right = st.columns([1, 1.3])
    what = vis.objective.describe()
    if vis.probability is not None:
        what = f"{bundle.labels[vis.objective.index]} · probability {vis.probability:.3f} · logit {vis.score:.2f}"
    else:
        what = f"{what} · mean activation {vis.score:.3f}"
    left.image(resize_image(vis.image, (SHOW, SHOW)), caption=what, width="stretch")
    fig = go.Figure(go.Scatter(y=vis.trace, mode="lines"))
    fig.update_layout(height=220, margin=dict(l=10, r=10, t=30, b=10), title="Objective per step (transformed)",
                      xaxis_title="step")  # fmt: skip
    right.plotly_chart(fig, width="stretch")
    snaps = vis.snapshots[-6:]
    cols = right.columns(len(snaps))
    for col, (step, img) in zip(cols, snaps):
        col.image(img, caption=f"step {step}", width="stretch")


def facets_view(result: Facets, pool: Pool | None, bundle) -> None:
    corr = result.correlations()
    off = corr[~np.eye(len(corr), dtype=bool)] if len(corr) > 1 else np.array([])
    if off.size:
        st.caption(f"Pairwise correlation of the facets' pictures: at most {off.max():.2f} (distinct facets: < 0.9).")
    for k, (vis, mean, members) in enumerate(zip(result.visualizations, result.means, result.members)):
        st.markdown(f"**Facet {k + 1}** · {len(members)} image(s) · probability {vis.probability:.3f}")
        cols = st.columns([1, 1, 3])
        cols[0].image(resize_image(vis.image, (160, 160)), caption="visualisation", width="stretch")
        cols[1].image(resize_image(mean, (160, 160)), caption="start: the cluster's mean", width="stretch")
        if pool is not None:
            thumbs = [resize_image(np.asarray(pool.images[i]), (72, 72)) for i in members[:8]]
            if thumbs:
                cols[2].image(thumbs, caption=[pool.names[i] for i in members[:8]], width=72)


def examples_view(found, pool: Pool) -> None:
    if not found:
        st.info("No images.")
        return
    cols = st.columns(4)
    for k, ex in enumerate(found):
        with cols[k % len(cols)]:
            st.image(resize_image(ex.patch, (128, 128)), caption=f"{pool.names[ex.index]} · {ex.score:.2f}",
                     width="stretch")  # fmt: skip


def traversal_view(tr: Traversal, coords: np.ndarray, conf: np.ndarray, written: WrittenEnd, bundle) -> None:
    src, tgt = bundle.labels[tr.source_class], bundle.labels[tr.target_class]
    a, b, c, d = st.columns(4)
    a.metric(f"Confidence in “{src}”", f"{tr.end_confidence:.3f}", f"{tr.end_confidence - tr.start_confidence:+.3f}",
             help="at the float end point, as the walk holds it")  # fmt: skip
    b.metric(
        "SSIM to the target", f"{tr.distances['ssim']:.3f}", help=f"the source's: {tr.distances['source_ssim']:.3f}"
    )
    c.metric("L2 to the target", f"{tr.distances['l2']:.2f}", help=f"the source's: {tr.distances['source_l2']:.1f}")
    d.metric("L∞ to the target", f"{tr.distances['linf']:.3f}", help=f"the source's: {tr.distances['source_linf']:.3f}")
    st.caption(
        f"From the source image: SSIM {tr.distances['source_ssim']:.3f}, L2 {tr.distances['source_l2']:.1f}, "
        f"L∞ {tr.distances['source_linf']:.3f} (pixels in [0, 1], at the model's input size)."
    )
    written_view(tr, written, src)
    cols = st.columns(len(tr.frames))
    for col, (step, frame) in zip(cols, tr.frames):
        col.image(frame, caption=f"step {step}", width="stretch")
    left, right = st.columns(2)
    fig = go.Figure()
    fig.add_scatter(y=tr.confidence, mode="lines", name=f"“{src}” (held)")
    fig.add_scatter(y=tr.confidence_8bit, mode="lines", line=dict(dash="dot"), name=f"“{src}”, rounded to 8 bits")
    fig.add_scatter(y=tr.target_confidence, mode="lines", name=f"“{tgt}” (the target's class)")
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), title="Probability along the path",
                      xaxis_title="step", yaxis_range=[0, 1.02])  # fmt: skip
    left.plotly_chart(fig, width="stretch")
    # the triangle (source, target, end) drawn with source at (0, 0), target at (1, 0) and end at (0.5, 1)
    x = coords[:, 0] + 0.5 * coords[:, 1]
    y = coords[:, 1]
    tri = go.Figure(go.Scatter(x=x, y=y, mode="markers", marker=dict(size=14, color=conf, colorscale="Viridis",
                                cmin=0, cmax=1, colorbar=dict(title="p")), hovertemplate="p=%{marker.color:.3f}"))  # fmt: skip
    for (px, py), name in zip([(0, 0), (1, 0), (0.5, 1)], ["source", "target", "end"]):
        tri.add_annotation(x=px, y=py, text=name, showarrow=False, yshift=-18 if py == 0 else 18)
    tri.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), showlegend=False,
                      title=f"p(“{src}”) over the triangle", xaxis_visible=False, yaxis_visible=False)  # fmt: skip
    right.plotly_chart(tri, width="stretch")


def written_view(tr: Traversal, written: WrittenEnd, src: str) -> None:
    """What the downloaded end image is given, beside the in-memory value, and the downloads."""
    h, w = tr.end.shape[:2]
    st.markdown(
        f"**The written end image** (`end.png`, {w}×{h}, the model's input), re-read and classified: "
        f"“{src}” **{written.confidence:.4f}** (in memory {tr.end_confidence:.4f}; rounded to 8 bits in memory "
        f"{tr.end_confidence_8bit:.4f}); its top class: “{written.label}” {written.top_probability:.4f}. "
        "`python -m glimpse classify end.png` gives the same."
    )
    if written.note:
        st.warning(written.note)
    a, b, c = st.columns(3)
    a.download_button("end.png (the model's input)", written.png, "end.png", "image/png", key="lab_bs_png",
                      help="lossless, at the model's input size: classifying it reproduces the number above")  # fmt: skip
    b.download_button("traversal.npz (float points)", written.npz, "traversal.npz", "application/octet-stream",
                      key="lab_bs_npz", help="the float end point and frames, the confidences along the path, "
                      "and how it was made (meta)")  # fmt: skip
    c.download_button("end-view.png (a view)", written.view, "end-view.png", "image/png", key="lab_bs_view",
                      help="upsampled to the source's size for looking at; resized, it is not the image the model "
                      "was given, and re-classifying it does not reproduce the number")  # fmt: skip


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
        return ImageChoice(up.name, pixels, hashlib.sha1(pixels.tobytes()).hexdigest())
    return ImageChoice(name, samples[name], hashlib.sha1(samples[name].tobytes()).hexdigest())


__all__ = [
    "KEYS",
    "Pool",
    "run",
    "class_picker",
    "cost_caption",
    "examples",
    "examples_view",
    "facets",
    "facets_view",
    "pool_picker",
    "steps_and_size",
    "target_picker",
    "traversal",
    "traversal_view",
    "visualization",
    "visualization_view",
    "WrittenEnd",
    "written_end",
]
