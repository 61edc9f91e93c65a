"""Views of the saliency page. They only draw (and serialise for download): every number they show
was computed by a service before, so changing a display option never recomputes a map."""

from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from components.views import heatmap_figure
from glimpse.display import DIVERGING, MODE_TITLES, colour_range, lut, resize_map, shared_ranges, shown_values
from glimpse.display import SIGNED_MODES as SIGNED_MODES  # re-exported: the saliency controls pick scales by it
from glimpse.saliency import map_units


# --------------------------------------------------------------------------------------------------
# display preparation (pure: values + options -> what the colour bar spans; the rules are glimpse.display's)
# --------------------------------------------------------------------------------------------------
def ranges(maps, options) -> list[tuple[float, float, float | None]]:
    """Per-map colour ranges, or with ``shared_scale`` one range per group of maps in the same units (the
    widest of the group's ranges). Maps in different units (a gradient, a CAM, a probability) never share:
    one range over all of them drew every map but the largest as a blank."""
    per_map = [colour_range(shown_values(m.values, options.mode), options.mode, options.clip) for m in maps]
    if not options.shared_scale:
        return per_map
    return shared_ranges(per_map, [map_units(m) for m in maps])


def colour_scale(options, zrange) -> str:
    """The colour map of one map: the chosen one, except in ``auto`` mode for a map of both signs (its range
    is centred at 0), which is drawn diverging (:data:`glimpse.display.DIVERGING`) so 0 stays the neutral
    colour; the chosen (sequential) map then draws the one-signed maps from their low to their high end."""
    if options.mode not in SIGNED_MODES and zrange[2] == 0.0:
        return DIVERGING
    return options.colorscale


def scale_groups(maps) -> list[list[str]]:
    """Methods of ``maps`` grouped by units, in order: who shares a colour scale when it is shared."""
    groups: dict[str, list[str]] = {}
    for m in maps:
        groups.setdefault(map_units(m), []).append(m.method)
    return list(groups.values())


def shared_scale_note(record, options, infos: dict) -> None:
    """Say which maps share a colour scale (only maps in the same units do)."""
    if not options.shared_scale or options.mode == "minmax":
        return
    groups = scale_groups(record.maps)
    shared = [" = ".join(infos[n].label if n in infos else n for n in g) for g in groups if len(g) > 1]
    alone = [infos[g[0]].label if g[0] in infos else g[0] for g in groups if len(g) == 1]
    parts = [f"shared by {'; '.join(shared)}"] if shared else []
    parts += [f"own scale (no other map in its units): {', '.join(alone)}"] if alone else []
    st.caption("Colour scale " + " · ".join(parts) + ". Only maps in the same units share a scale.")


def _title(m, info) -> str:
    return info.label if info is not None else m.method


def facts(m) -> str:
    """One line under a map: time, layer, completeness gap, parameters."""
    parts = [f"{m.seconds:.2f} s"]
    if m.layer:
        parts.append(f"layer `{m.layer}`")
    if m.completeness_gap is not None:
        parts.append(f"completeness gap {m.completeness_gap:.1%}")
    if m.steps_used is not None:
        parts.append(f"{m.steps_used} path steps")
    if m.params:
        parts.append(", ".join(f"{k}={v}" for k, v in m.params))
    if m.noise_tunnel:
        parts.append("noise tunnel " + ", ".join(f"{k}={v}" for k, v in m.noise_tunnel))
    return " · ".join(parts)


# --------------------------------------------------------------------------------------------------
# Streamlit views
# --------------------------------------------------------------------------------------------------
def predictions_view(top: list[tuple[int, str, float]]) -> None:
    """Top-k predictions as a compact horizontal bar chart."""
    labels = [f"{name.split(',')[0]} (#{i})" for i, name, _ in top][::-1]
    probs = [p for _, _, p in top][::-1]
    fig = go.Figure(go.Bar(x=probs, y=labels, orientation="h", text=[f"{p:.1%}" for p in probs]))
    fig.update_layout(height=40 + 28 * len(top), margin=dict(l=0, r=0, t=10, b=0), xaxis=dict(range=[0, 1]))
    st.plotly_chart(fig, width="stretch", config={"displayModeBar": False}, key="sal_predictions")


def image_uri(thumb: np.ndarray) -> str:
    """The thumbnail as a PNG data URI: plotly validates and serialises it much faster than a z-array image,
    which keeps a display change quick (bench/saliency_display.py measures it)."""
    import base64

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(thumb).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def map_figure(
    m, thumb: np.ndarray, options, zrange, info=None, height: int = 300, uri: str | None = None
) -> go.Figure:
    """One overlay: the map (display mode applied) on the image, with colour bar and hover values."""
    zmin, zmax, zmid = zrange
    h, w = thumb.shape[:2]
    values = resize_map(shown_values(m.values, options.mode), (h, w))
    fig = heatmap_figure(
        values,
        title=_title(m, info),
        colorscale=colour_scale(options, zrange),
        zmin=zmin,
        zmax=zmax,
        zmid=zmid,
        colorbar_title=MODE_TITLES[options.mode],
        height=height,
        max_side=max(h, w),
    )
    # The image goes underneath as an encoded PNG (same pixel grid as the heatmap: centres at 0..w-1).
    fig.data[0].opacity = options.opacity
    background = go.Image(source=uri or image_uri(thumb), x0=0, y0=0, dx=1, dy=1, hoverinfo="skip")
    fig.add_trace(background)
    fig.data = (fig.data[1], fig.data[0])
    return fig


def map_grid(record, options, infos: dict, extra=None) -> None:
    """The grid of overlays; ``extra(m)`` draws per-map extras (faithfulness) under each map."""
    zr = ranges(record.maps, options)
    uri = record.thumbnail_uri or image_uri(record.thumbnail)
    for start in range(0, len(record.maps), options.columns):
        cols = st.columns(options.columns)
        for col, m, z in zip(cols, record.maps[start : start + options.columns], zr[start : start + options.columns]):
            with col:
                info = infos.get(m.method)
                st.plotly_chart(
                    map_figure(m, record.thumbnail, options, z, info, uri=uri),
                    width="stretch",
                    config={"displaylogo": False},
                    key=f"sal_map_{m.method}",
                )
                st.caption(facts(m))
                if options.teaching and info is not None:
                    st.caption(f"{info.explanation}\n\n*{info.citation}*")
                if extra is not None:
                    extra(m)


def sensitivity_badge(rho: float) -> None:
    """Class sensitivity as a badge: green when the map clearly depends on the class, orange when barely."""
    if not np.isfinite(rho):
        st.badge("class sensitivity: undefined (a constant map)", color="gray")
        return
    colour = "green" if rho < 0.5 else "orange" if rho < 0.9 else "red"
    st.badge(f"class sensitivity ρ = {rho:.2f}", color=colour, help="lower is better; 1 = the same map for any class")


def curves_figure(res) -> go.Figure:
    """Deletion and insertion curves of one map (small), AUCs in the legend."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=res.fractions, y=res.deletion_scores, name=f"deletion AUC {res.deletion_auc:.3f} (↓)", mode="lines"
        )
    )
    fig.add_trace(
        go.Scatter(
            x=res.fractions, y=res.insertion_scores, name=f"insertion AUC {res.insertion_auc:.3f} (↑)", mode="lines"
        )
    )
    fig.update_layout(
        height=200,
        margin=dict(l=0, r=0, t=24, b=0),
        title=dict(text="Deletion / insertion", font=dict(size=12)),
        xaxis=dict(title="fraction of pixels", range=[0, 1]),
        yaxis=dict(title="p(target)", range=[0, 1.02]),
        legend=dict(orientation="h", y=-0.45, font=dict(size=10)),
    )
    return fig


def sanity_figure(res) -> go.Figure:
    """Spearman ρ and SSIM of |map| against the trained model's, per randomisation stage."""
    x = list(res.stages)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=res.spearman, name="Spearman ρ of |map|", mode="lines+markers"))
    fig.add_trace(go.Scatter(x=x, y=res.ssim, name="SSIM", mode="lines+markers"))
    fig.update_layout(
        height=220,
        margin=dict(l=0, r=0, t=24, b=0),
        title=dict(text="Randomisation cascade (output → input)", font=dict(size=12)),
        yaxis=dict(range=[-0.2, 1.05]),
        legend=dict(orientation="h", y=-0.6, font=dict(size=10)),
    )
    return fig


# --------------------------------------------------------------------------------------------------
# downloads
# --------------------------------------------------------------------------------------------------
def grid_png(record, options, infos: dict) -> bytes:
    """PNG of the grid as shown (mode, clip, colour map, opacity, shared scale), each map with its colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    maps = record.maps
    cols = min(options.columns, len(maps))
    rows = -(-len(maps) // cols)
    h, w = record.thumbnail.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.4 * rows * h / w + 0.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, m, zrange in zip(axes.ravel(), maps, ranges(maps, options)):
        zmin, zmax, _ = zrange
        # the page's own colour table (plotly's scale), so the PNG has the colours shown on screen
        name = colour_scale(options, zrange)
        cmap = ListedColormap(lut(name) / 255.0, name=name)
        values = resize_map(shown_values(m.values, options.mode), (h, w))
        ax.imshow(record.thumbnail)
        im = ax.imshow(values, cmap=cmap, vmin=zmin, vmax=zmax, alpha=options.opacity)
        info = infos.get(m.method)
        ax.set_title(info.label if info is not None else m.method, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=7)
    target = maps[0].target_label if maps else ""
    fig.suptitle(f"{record.image_name} · {record.model_id} · target: {target}", fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def maps_npz(record) -> bytes:
    """NPZ of the raw maps in Glimpse's one saliency NPZ format (:mod:`glimpse.saliency.npz`: float32 maps at
    the model-input resolution, plus ``meta``: the image's name, digest and size and each map's parameters)."""
    from glimpse.saliency.npz import ImageRef, write_npz

    return write_npz(record.maps, image=ImageRef(record.image_name, record.digest, record.image_size))
