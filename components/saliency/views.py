"""The saliency lens's views. They only draw (and serialise for download): every number they show was computed
by a service before, so changing a display option never recomputes a map."""

from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from components import jobs, loaders, session_results
from components import probe as probe_widgets
from components.costs import panel_cost, pass_time
from components.image_input import ImageChoice
from components.saliency import controls, services
from components.views import heatmap_figure
from glimpse.display import (
    DIVERGING,
    MODE_TITLES,
    SIGNED_MODES,
    colour_range,
    data_uri,
    lut,
    resize_map,
    shared_ranges,
    shown_values,
)
from glimpse.durations import seconds_span
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
    background = go.Image(source=uri or data_uri(thumb), x0=0, y0=0, dx=1, dy=1, hoverinfo="skip")
    fig.add_trace(background)
    fig.data = (fig.data[1], fig.data[0])
    return fig


PROBE = probe_widgets.Keys("sal_probe_x", "sal_probe_y")


def map_grid(record, options, infos: dict, extra=None, xy=None) -> None:
    """The grid of overlays; ``extra(m)`` draws per-map extras (faithfulness) under each map; a click on a map
    selects the probed pixel, ``xy`` (marked on every map)."""
    zr = ranges(record.maps, options)
    uri = record.thumbnail_uri or data_uri(record.thumbnail)
    grid, image_shape = record.thumbnail.shape[:2], record.image.pixels.shape
    for start in range(0, len(record.maps), options.columns):
        cols = st.columns(options.columns)
        for col, m, z in zip(cols, record.maps[start : start + options.columns], zr[start : start + options.columns]):
            with col:
                info = infos.get(m.method)
                fig = probe_widgets.clickable(map_figure(m, record.thumbnail, options, z, info, uri=uri), grid, xy,
                                              image_shape)  # fmt: skip
                probe_widgets.chart(fig, f"sal_map_{m.method}", grid, image_shape, PROBE, width="stretch",
                                    config={"displaylogo": False})  # fmt: skip
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


# --------------------------------------------------------------------------------------------------
# the page's sections
# --------------------------------------------------------------------------------------------------
def activation_warning(model_id: str, device: str, image: ImageChoice, choice, infos: dict) -> None:
    """Warn when a chosen method assumes non-negative activations and the chosen layer has negative ones."""
    assuming = [infos[n].label for n, _ in choice.methods if infos[n].assumes_nonnegative_activations]
    if not assuming or choice.layer is None:
        return
    acts = services.layer_summary(model_id, device, image, choice.layer)
    if acts.nonnegative:
        return
    bundle = loaders.classifier(model_id, device)
    better = next((layer for layer in bundle.target_layers if layer != choice.layer), None)
    st.warning(
        f"{', '.join(assuming)} assume{'s' if len(assuming) == 1 else ''} non-negative activations (the output of "
        f"a ReLU), but `{choice.layer}` has negative values (minimum {acts.min_value:.3g}; {acts.negative_channels} "
        f"of {acts.channels} channels sum below zero), so the weights leave the range the paper derives. "
        + (f"Pick a layer after an activation, such as `{better}`." if better else "Pick a layer after an activation.")
    )


def cost_view(model_id: str, device: str, choice, infos: dict) -> None:
    """What Compute will cost: images through the model per group of methods, and seconds on this machine."""
    try:
        cost = panel_cost(model_id, device, choice.methods, choice.layer, choice.noise_tunnel)
    except ValueError as err:
        st.warning(f"{err}.")
        return
    times = pass_time(model_id, device)
    seconds = seconds_span(*cost.seconds(times))
    unknown = f"; not counted: {', '.join(infos[n].label for n in cost.unknown)}" if cost.unknown else ""
    with st.expander(f"**Cost:** {_images(cost.total)} through the model, {seconds} on this {device}{unknown}"):
        rows = [
            {
                "methods (one pass shared)" if len(g.methods) > 1 else "method": ", ".join(
                    infos[n].label for n in g.methods
                ),
                "forward+backward images": _span(g.cost.backward, g.cost.most[1]) if g.cost else "?",
                "forward-only images": _span(g.cost.forward, g.cost.most[0]) if g.cost else "?",
                "seconds": _span(*g.seconds(times), "{:.2f}") if g.cost else "?",
            }
            for g in cost.groups
        ]
        st.dataframe(rows, hide_index=True, width="stretch")
        st.caption(
            f"Measured on this machine: {times.backward_s * 1e3:.0f} ms per image forward+backward and "
            f"{times.forward_s * 1e3:.0f} ms forward only, in batches of {times.batch_size} "
            f"({times.single_backward_s * 1e3:.0f} ms for a single image)."
        )


def _span(low, high, fmt: str = "{}") -> str:
    return fmt.format(low) if high is None or high == low else f"{fmt.format(low)}–{fmt.format(high)}"


def _images(c) -> str:
    backward = _span(c.backward, c.most[1])
    forward = _span(c.forward, c.most[0])
    parts = [f"{backward} image{'s' * (c.most[1] != 1)} forward+backward"] if c.most[1] else []
    parts += [f"{forward} forward only"] if c.most[0] else []
    return " and ".join(parts) or "nothing"


def how_made(record) -> str:
    """ "4 maps computed in 2.31 s", "4 maps from cache", or, for a session that waited while another computed
    the same panel, how long it waited (it was told "from cache in 10.07 s")."""
    n = f"{len(record.maps)} map{'s' * (len(record.maps) != 1)}"
    if record.computed:
        return f"{n} computed in {record.seconds:.2f} s"
    if record.seconds < 0.5:
        return f"{n} from cache"
    return f"{n} computed by another session's identical run, which this one waited {record.seconds:.1f} s for"


def faithfulness(record, m, steps: int, stages: int) -> None:
    """Under one map: its three faithfulness buttons and the scores computed so far."""
    b1, b2, b3 = st.columns(3)
    if b3.button(
        "Class sensitivity",
        key=f"sal_class_btn_{m.method}",
        help="Spearman ρ between this method's maps for the most and the least likely class (Rebuffi et "
        "al., CVPR 2020): near 1, the map hardly depends on the class it explains; lower is better.",
    ):
        with st.spinner("Maps of the most and the least likely class…"):
            services.sensitivity(record, m)
    if b1.button("Deletion / insertion", key=f"sal_curve_btn_{m.method}"):
        with st.spinner("Deletion and insertion curves…"):
            services.score(record, [m], steps)
    if b2.button("Sanity check", key=f"sal_sanity_btn_{m.method}"):
        try:
            with jobs.heavy("sanity check", cancel_message="Sanity check cancelled."):
                services.sanity_check(record, m, stages)
        except (ValueError, RuntimeError) as err:
            st.error(f"Sanity check failed: {err}")
    rho = session_results.get((services.SENSITIVITY_KEY, record.key, m.method))
    if rho is not None:
        sensitivity_badge(rho)
    curves = session_results.get((services.SCORES_KEY, record.key, m.method, steps))
    if curves is not None:
        st.plotly_chart(curves_figure(curves), width="stretch", key=f"sal_curve_{m.method}")
    check = session_results.get((services.SANITY_KEY, record.key, m.method))
    if check is not None:
        st.plotly_chart(sanity_figure(check), width="stretch", key=f"sal_sanity_{m.method}")


@st.fragment
def results_view(image: ImageChoice, model_id: str, infos: dict) -> None:
    """The maps of the last Compute with their display options and faithfulness scores (a fragment: a display
    change reruns only this)."""
    record = session_results.get(services.RESULT_KEY)
    if record is None:
        return
    st.divider()
    if record.digest != image.digest or record.model_id != model_id:
        st.info(f"These maps are for {record.image_name} on {record.model_id}; press Compute to update them.")
    st.markdown(f"**Target:** {record.maps[0].target_label} · {how_made(record)}")
    options = controls.display_controls()
    shared_scale_note(record, options, infos)
    faithful, steps, stages, score_every = controls.faithfulness_controls()
    if score_every:
        services.score_all(record, steps)
    xy = probe_widgets.pixel_inputs(record.image.pixels.shape, PROBE, "every map")
    map_grid(record, options, infos, extra=(lambda m: faithfulness(record, m, steps, stages)) if faithful else None,
             xy=xy)  # fmt: skip
    maps = [(m.method, "saliency", m.values, {}) for m in record.maps]
    probe_widgets.panel(record.image.pixels.shape, maps, xy, "sal_probe", "The maps are at the model input, "
                        "stretched back to the image's shape.")  # fmt: skip
    stem = record.image_name.rsplit(".", 1)[0]
    d1, d2, _ = st.columns([1, 1, 2])
    d1.download_button(
        "PNG of the grid",
        data=lambda: grid_png(record, options, infos),
        file_name=f"saliency_{stem}.png",
        mime="image/png",
        icon=":material/image:",
        on_click="ignore",
    )
    d2.download_button(
        "NPZ of the raw maps",
        data=lambda: maps_npz(record),
        file_name=f"saliency_{stem}.npz",
        mime="application/octet-stream",
        icon=":material/download:",
        on_click="ignore",
    )
