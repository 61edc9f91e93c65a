"""The Model lab's views: the visualisation and its objective over the steps, the facets beside their clusters,
the top images' patches, and the traversal (its measures, the written end image and its downloads, the path's
frames, the probabilities along it and over the source–target–end triangle). They only draw."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from components.model_lab import SHOW
from components.model_lab.services import Pool
from glimpse.display import resize_image
from glimpse.lab import Facets, Traversal
from glimpse.lab.written import WrittenEnd


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
