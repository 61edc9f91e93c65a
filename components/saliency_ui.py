"""The saliency page's Streamlit layer: widget groups that return frozen dataclasses, and the cached,
bounded service calls (saliency maps, predictions, faithfulness scores).

Cache keys are plain values: model id, device, the methods with their parameters as sorted tuples, the
target, the layer, the seed; the image is passed itself and hashed by its digest (``image_input.BY_DIGEST``),
the one convention of every cached service.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import streamlit as st
from torch import nn

from components import jobs, loaders, saliency_views, session_results
from components.costs import panel_cost, pass_time
from components.image_input import BY_DIGEST, ImageChoice
from components.views import ONE_MATCH_ON_ENTER
from glimpse.display import resize_image
from glimpse.evaluation.sensitivity import class_sensitivity
from glimpse.saliency import REGISTRY
from glimpse.saliency.layers import LayerActivations, layer_activations
from models.registry import ClassifierBundle, ModelLoadError

#: Counts real (not cached) service runs per session; the page test reads it to prove that display
#: changes never recompute.
CALLS_KEY = "saliency_service_calls"
RESULT_KEY = "saliency_result"
#: The "Explain class" value meaning "the current image's top-1 prediction".
TOP1 = -1
SCORES_KEY = "saliency_scores"
SANITY_KEY = "saliency_sanity"
SENSITIVITY_KEY = "saliency_class_sensitivity"

#: Shown when the page opens: all four share ONE forward+backward pass (well under a second on CPU).
DEFAULT_METHODS = ("gradient", "input_x_gradient", "gradcam", "gradcampp")
NOISE_KINDS = {"smoothgrad": "SmoothGrad", "smoothgrad_sq": "SmoothGrad²", "vargrad": "VarGrad"}

SIGNED_SCALES = ("RdBu_r", "PiYG", "PuOr_r", "BrBG")
MAGNITUDE_SCALES = ("inferno", "viridis", "magma", "jet", "hot")


# --------------------------------------------------------------------------------------------------
# plain values handed from widgets to services and views
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TargetChoice:
    index: int | None  # None: the top-1 prediction
    contrast: int | None = None


@dataclass(frozen=True)
class MethodChoice:
    """Methods with their parameters as sorted (name, value) tuples: hashable, a cache key."""

    methods: tuple[tuple[str, tuple], ...]
    layer: str | None
    noise_tunnel: tuple | None  # sorted (name, value) pairs or None
    seed: int = 0


@dataclass(frozen=True)
class DisplayOptions:
    mode: str = "signed"  # "signed" | "absolute" | "positive"
    shared_scale: bool = False
    clip: float = 99.5  # percentile of |value| (or value) that maps to the end of the colour bar
    opacity: float = 0.6
    colorscale: str = "RdBu_r"
    columns: int = 3
    teaching: bool = False


@dataclass(frozen=True)
class SaliencyRun:
    """What a Compute click produced, kept in st.session_state for the display fragment."""

    key: tuple
    maps: tuple  # of glimpse.saliency.SaliencyMap
    image: ImageChoice  # the explained image (faithfulness scores run on it even after the picker changed)
    thumbnail: np.ndarray  # uint8, the image downscaled for display
    model_id: str
    device: str
    seconds: float
    computed: bool = field(default=True)
    thumbnail_uri: str = ""  # the thumbnail as a PNG data URI, encoded once for every redraw

    @property
    def image_name(self) -> str:
        return self.image.name

    @property
    def digest(self) -> str:
        return self.image.digest

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the explained image; the NPZ records it."""
        return tuple(self.image.pixels.shape[:2])


# --------------------------------------------------------------------------------------------------
# services (cached, bounded)
# --------------------------------------------------------------------------------------------------
def _count_call() -> None:
    st.session_state[CALLS_KEY] = st.session_state.get(CALLS_KEY, 0) + 1


@st.cache_data(max_entries=16, show_spinner=False, hash_funcs=BY_DIGEST)
def saliency_maps(
    model_id: str,
    device: str,
    image: ImageChoice,
    methods: tuple[tuple[str, tuple], ...],
    target: int | None,
    contrast: int | None,
    layer: str | None,
    seed: int,
    noise_tunnel: tuple | None,
) -> tuple:
    """One ``glimpse.saliency.explain`` call for the whole panel (shared passes are shared)."""
    from glimpse.saliency import Target, explain, top1

    _count_call()
    bundle = loaders.classifier(model_id, device)
    pixels = image.pixels
    index = top1(bundle, pixels) if target is None else target
    # Created inside the cached function so that a cache hit replays (and removes) it harmlessly.
    with jobs.bar("Computing saliency maps") as progress:
        maps = explain(
            bundle,
            pixels,
            [(name, dict(params)) for name, params in methods],
            target=Target(int(index), contrast),
            layer=layer,
            seed=seed,
            noise_tunnel=dict(noise_tunnel) if noise_tunnel else None,
            progress=progress,
        )
    return tuple(maps)


@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=BY_DIGEST)
def curves(
    model_id: str, device: str, image: ImageChoice, values: bytes, shape: tuple[int, int], target: int, steps: int
):
    """Deletion/insertion curves of one map (the raw map's bytes are part of the key)."""
    from glimpse.evaluation import deletion_insertion

    _count_call()
    bundle = loaders.classifier(model_id, device)
    arr = np.frombuffer(values, dtype=np.float32).reshape(shape)
    return deletion_insertion(bundle, image.pixels, arr, target=target, steps=steps)


@st.cache_data(max_entries=16, show_spinner=False, hash_funcs=BY_DIGEST)
def sanity(
    model_id: str,
    device: str,
    image: ImageChoice,
    method: str,
    params: tuple,
    target: int,
    contrast: int | None,
    layer: str | None,
    seed: int,
    noise_tunnel: tuple | None,
    stages: int,
):
    """Cascading randomisation check of one method (recomputes its map on progressively random copies)."""
    from glimpse.evaluation import randomisation_check
    from glimpse.saliency import Target, explain

    _count_call()
    bundle = loaders.classifier(model_id, device)

    def run(work, pixels, index):
        maps = explain(
            work,
            pixels,
            [(method, dict(params))],
            target=Target(index, contrast),
            layer=layer,
            seed=seed,
            noise_tunnel=dict(noise_tunnel) if noise_tunnel else None,
        )
        return maps[0].values

    with jobs.bar(f"Sanity check of {method}") as progress:
        return randomisation_check(
            bundle,
            image.pixels,
            method,
            target=target,
            layer=layer,
            params=dict(params),
            stages=stages,
            seed=seed,
            map_fn=run,
            progress=progress,
        )


@st.cache_data(max_entries=32, show_spinner=False, hash_funcs=BY_DIGEST)
def layer_summary(model_id: str, device: str, image: ImageChoice, layer: str) -> LayerActivations:
    """Whether ``layer``'s activations for the image go negative (one forward pass)."""
    return layer_activations(loaders.classifier(model_id, device), image.pixels, layer)


def compute(model_id: str, device: str, image: ImageChoice, target: TargetChoice, choice: MethodChoice) -> SaliencyRun:
    """Run (or fetch from cache) the panel and wrap it for the display fragment."""
    t0 = time.perf_counter()
    calls = st.session_state.get(CALLS_KEY, 0)
    thumb = thumbnail(image.pixels)
    key = (model_id, device, image.digest, choice.methods, target.index, target.contrast, choice.layer, choice.seed)
    maps = saliency_maps(
        model_id,
        device,
        image,
        choice.methods,
        target.index,
        target.contrast,
        choice.layer,
        choice.seed,
        choice.noise_tunnel,
    )
    return SaliencyRun(
        key=key + (choice.noise_tunnel,),
        maps=maps,
        image=image,
        thumbnail=thumb,
        thumbnail_uri=saliency_views.image_uri(thumb),
        model_id=model_id,
        device=device,
        seconds=time.perf_counter() - t0,
        computed=st.session_state.get(CALLS_KEY, 0) > calls,
    )


def thumbnail(pixels: np.ndarray, max_side: int = 256) -> np.ndarray:
    """The image downscaled once for every overlay (display only)."""
    h, w = pixels.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return pixels
    return resize_image(pixels, (max(1, round(h * scale)), max(1, round(w * scale))))


# --------------------------------------------------------------------------------------------------
# widget groups
# --------------------------------------------------------------------------------------------------
def target_controls(bundle: ClassifierBundle, top: list[tuple[int, str, float]]) -> TargetChoice:
    """Target class (top-1 by default, any class by name search) and an optional contrast class.

    The top-1 choice is the sentinel ``TOP1`` (-1), not None: Streamlit's selectbox reads a None value as "no
    selection", so after the image changed it showed the previous image's top-1, then "Choose an option".
    """
    options = [TOP1, *range(bundle.num_classes)]

    def name(i):
        if i == TOP1:
            return f"Top-1 prediction ({top[0][1]})" if top else "Top-1 prediction"
        return f"{bundle.labels[i]} · #{i}"

    chosen = st.selectbox(
        "Explain class", options, format_func=name, key="sal_target", help="Type to search the class names."
    )
    index = None if chosen == TOP1 else chosen
    contrast = None
    if st.toggle("Contrast with another class (A − B)", key="sal_contrast_on"):
        default = top[1][0] if len(top) > 1 else 0
        contrast = st.selectbox(
            "…minus class",
            range(bundle.num_classes),
            index=default,
            format_func=lambda i: f"{bundle.labels[i]} · #{i}",
            key="sal_contrast",
        )
        chosen = top[0][0] if index is None and top else index
        if contrast == chosen:
            st.warning("The contrast class equals the target class; pick another one.")
            contrast = None
    return TargetChoice(index=index, contrast=contrast)


def method_picker(infos: list) -> list[str]:
    """A multiselect of the registry's methods, ordered by family (gradient, cam, perturbation).

    ``?methods=gradient,gradcam`` in the page URL preselects methods (shareable demo links).
    """
    order = {"gradient": 0, "cam": 1, "perturbation": 2}
    infos = sorted(infos, key=lambda m: (order.get(m.family, 9), m.label))
    by_name = {m.name: m for m in infos}
    default = [n for n in DEFAULT_METHODS if n in by_name]
    wanted = st.query_params.get("methods")
    if wanted and "sal_methods" not in st.session_state:
        names = [n.strip() for n in wanted.split(",") if n.strip()]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            st.warning(f"Unknown method(s) in the link: {', '.join(unknown)}; known: {', '.join(by_name)}")
        default = [n for n in names if n in by_name] or default

    def label(n: str) -> str:
        info = by_name[n]
        marks = (" · slow" if info.slow else "") + (" · random" if REGISTRY[n].uses_seed(info.params) else "")
        return f"{info.label} ({info.family}){marks}"

    return st.multiselect(
        "Methods",
        list(by_name),
        default=default,
        format_func=label,
        key="sal_methods",
        **ONE_MATCH_ON_ENTER,
        help="Ordered by family: gradient, cam, perturbation; 'slow' marks methods that take seconds (a progress bar "
        "shows), 'random' those whose map depends on the seed. "
        "Gradient methods and the gradient CAMs at one layer share a single forward+backward pass. "
        "Preselect with ?methods=gradient,gradcam in the URL.",
    )


def layer_options(bundle: ClassifierBundle) -> list[str]:
    """The bundle's suggested layers first, then every convolution / activation / block path."""
    seen = list(bundle.target_layers)
    for name, module in bundle.model.named_modules():
        if not name or name in seen:
            continue
        if isinstance(module, (nn.Conv2d, nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sequential)) or (
            name.count(".") == 1 and name.split(".")[0] in ("blocks", "layers", "features", "layer")
        ):
            seen.append(name)
    return seen


def _param_widget(method: str, name: str, default, choices: dict):
    key = f"sal_param_{method}_{name}"
    if name in choices:
        opts = list(choices[name])
        return st.selectbox(name, opts, index=opts.index(default) if default in opts else 0, key=key)
    if isinstance(default, bool):
        return st.checkbox(name, value=default, key=key)
    if isinstance(default, int):
        return int(st.number_input(name, value=default, step=1, key=key))
    if isinstance(default, float):
        return float(st.number_input(name, value=default, format="%.4g", key=key))
    if default is None:
        text = st.text_input(name, value="", key=key, help="empty: the method's default")
        return text or None
    if isinstance(default, (list, tuple)):
        text = st.text_input(name, value=", ".join(map(str, default)), key=key, help="comma-separated")
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return tuple(int(p) if p.lstrip("-").isdigit() else p for p in parts)
    return st.text_input(name, value=str(default), key=key)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def method_controls(bundle: ClassifierBundle, selected: list[str], infos: dict) -> MethodChoice:
    """Per-method parameters, the CAM layer, the noise tunnel and the seed."""
    layer = None
    if any(infos[n].needs_layer for n in selected):
        layer = st.selectbox(
            "CAM layer",
            layer_options(bundle),
            key="sal_layer",
            help="The model's suggestions come first: post-activation maps (never negative), then block outputs.",
        )
    methods = []
    with st.expander("Method parameters", expanded=False):
        for name in selected:
            info = infos[name]
            if not info.params:
                continue
            st.markdown(f"**{info.label}**")
            cols = st.columns(min(3, len(info.params)))
            params = {}
            for i, (pname, default) in enumerate(info.params.items()):
                with cols[i % len(cols)]:
                    params[pname] = _hashable(_param_widget(name, pname, default, info.choices))
            methods.append((name, tuple(sorted(params.items()))))
        if not any(infos[n].params for n in selected):
            st.caption("The selected methods have no parameters.")
    have = {m for m, _ in methods}
    methods += [(n, ()) for n in selected if n not in have]
    order = {n: i for i, n in enumerate(selected)}
    methods.sort(key=lambda m: order[m[0]])
    noise = None
    with st.expander("Noise tunnel (SmoothGrad / SmoothGrad² / VarGrad on every selected method)"):
        kind = st.selectbox(
            "Kind", [None, *NOISE_KINDS], format_func=lambda k: "off" if k is None else NOISE_KINDS[k], key="sal_nt"
        )
        samples = st.slider("Samples", 2, 100, 25, key="sal_nt_samples")
        sigma = st.slider("Noise σ (fraction of the input range)", 0.0, 0.5, 0.15, 0.01, key="sal_nt_noise")
        if kind is not None:
            noise = tuple(sorted({"kind": kind, "samples": samples, "noise": sigma}.items()))
    drawn = [infos[n].label for n, p in methods if REGISTRY[n].uses_seed({**infos[n].params, **dict(p)})]
    seed_help = "Seeds every random draw: the same seed gives the same maps, bit for bit. " + (
        f"Used here by: {', '.join(drawn)}" + (" and the noise tunnel." if noise else ".")
        if drawn or noise
        else "None of the chosen methods draws at random."
    )
    seed = int(st.number_input("Seed", value=0, step=1, min_value=0, key="sal_seed", help=seed_help))
    return MethodChoice(methods=tuple(methods), layer=layer, noise_tunnel=noise, seed=seed)


def activation_warning(model_id: str, device: str, image: ImageChoice, choice: MethodChoice, infos: dict) -> None:
    """Warn when a chosen method assumes non-negative activations and the chosen layer has negative ones."""
    assuming = [infos[n].label for n, _ in choice.methods if infos[n].assumes_nonnegative_activations]
    if not assuming or choice.layer is None:
        return
    acts = layer_summary(model_id, device, image, choice.layer)
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


def cost_view(model_id: str, device: str, choice: MethodChoice, infos: dict) -> None:
    """What Compute will cost: images through the model per group of methods, and seconds on this machine."""
    try:
        cost = panel_cost(model_id, device, choice.methods, choice.layer, choice.noise_tunnel)
    except ValueError as err:
        st.warning(f"{err}.")
        return
    times = pass_time(model_id, device)
    low, high = cost.seconds(times)
    seconds = jobs.seconds_span(low, high)
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


def display_controls() -> DisplayOptions:
    """Display options; they only re-slice the stored result (call inside the fragment)."""
    c1, c2, c3, c4 = st.columns([1.3, 1, 1, 1])
    with c1:
        mode = st.radio(
            "Values",
            list(saliency_views.MODE_TITLES),
            format_func=lambda m: "min–max" if m == "minmax" else m,
            horizontal=True,
            key="sal_mode",
            help="The raw map is kept. min–max stretches each map to its own range (for maps such as RISE whose "
            "values all sit far from zero).",
        )
        shared = st.toggle(
            "Shared colour scale",
            key="sal_shared",
            help="On: maps in the same units (e.g. the gradient and SmoothGrad; Input×Gradient, IG, DeepLIFT and "
            "GradientSHAP) share one range, so their magnitudes compare; other maps keep their own. Off: each map "
            "uses its own range.",
        )
    with c2:
        scales = SIGNED_SCALES if mode in saliency_views.SIGNED_MODES else MAGNITUDE_SCALES
        colorscale = st.selectbox("Colour map", scales, key=f"sal_cmap_{mode}")
        clip = st.slider("Clip at percentile", 90.0, 100.0, 99.5, 0.1, key="sal_clip")
    with c3:
        opacity = st.slider("Opacity", 0.0, 1.0, 0.6, 0.05, key="sal_opacity")
        columns = st.slider("Columns", 1, 6, 3, key="sal_columns")
    with c4:
        teaching = st.toggle("Teaching mode", key="sal_teaching", help="Each method's idea and its paper.")
    return DisplayOptions(
        mode=mode,
        shared_scale=shared,
        clip=clip,
        opacity=opacity,
        colorscale=colorscale,
        columns=columns,
        teaching=teaching,
    )


def score(record: SaliencyRun, m, steps: int):
    """Deletion/insertion curves of one map of ``record`` (cached), kept in st.session_state."""
    values = np.ascontiguousarray(m.values, dtype=np.float32)
    res = curves(record.model_id, record.device, record.image, values.tobytes(), values.shape, m.target.index, steps)
    session_results.put((SCORES_KEY, record.key, m.method, steps), res)
    return res


def score_all(record: SaliencyRun, steps: int) -> None:
    """Deletion/insertion curves of every map, with a progress bar and a Cancel button."""
    label = "scores of every map"
    with jobs.heavy(label, cancel_message="Scoring stopped: the maps scored so far are kept."):
        progress = jobs.Progress(label, len(record.maps), unit="map")
        for k, m in enumerate(record.maps):
            progress.step(k, f"{REGISTRY[m.method].info.label}: deletion and insertion")
            score(record, m, steps)
            progress.within(0.5, "class sensitivity")
            sensitivity(record, m)
        progress.done()


def sanity_check(record: SaliencyRun, m, stages: int):
    """Cascading randomisation check of one map's method (cached), kept in st.session_state."""
    res = sanity(
        record.model_id,
        record.device,
        record.image,
        m.method,
        m.params,
        m.target.index,
        m.target.contrast,
        m.layer,
        m.seed,
        m.noise_tunnel,
        stages,
    )
    session_results.put((SANITY_KEY, record.key, m.method), res)
    return res


@st.cache_data(max_entries=256, show_spinner=False, hash_funcs=BY_DIGEST)
def class_rho(
    model_id: str,
    device: str,
    image: ImageChoice,
    method: str,
    params: tuple,
    layer: str | None,
    seed: int,
    noise_tunnel: tuple | None,
) -> float:
    """Class sensitivity of one method on the image: Spearman ρ of its maps for the most and least likely class."""
    _count_call()
    result = class_sensitivity(
        loaders.classifier(model_id, device),
        [image.pixels],
        [(method, dict(params))],
        seed=seed,
        layer=layer,
        noise_tunnel=None if noise_tunnel is None else dict(noise_tunnel),
    )
    return float(result.rho[0, 0])


def sensitivity(record: SaliencyRun, m) -> float:
    """Class sensitivity of one map's method (cached), kept in st.session_state."""
    nt = None if m.noise_tunnel is None else tuple(sorted(dict(m.noise_tunnel).items()))
    rho = class_rho(record.model_id, record.device, record.image, m.method, tuple(m.params), m.layer, m.seed, nt)
    session_results.put((SENSITIVITY_KEY, record.key, m.method), rho)
    return rho


def how_made(record: SaliencyRun) -> str:
    """ "4 maps computed in 2.31 s", "4 maps from cache", or, for a session that waited while another computed
    the same panel, how long it waited (it was told "from cache in 10.07 s")."""
    n = f"{len(record.maps)} map{'s' * (len(record.maps) != 1)}"
    if record.computed:
        return f"{n} computed in {record.seconds:.2f} s"
    if record.seconds < 0.5:
        return f"{n} from cache"
    return f"{n} computed by another session's identical run, which this one waited {record.seconds:.1f} s for"


#: the Compute button's key (its press starts the panel; it is disabled while the panel runs)
COMPUTE_KEY = "sal_compute"


def compute_button(choice: MethodChoice) -> bool:
    """Compute, disabled while its panel runs and when no method is chosen."""
    return jobs.job_button("Compute", key=COMPUTE_KEY, disabled=not choice.methods)


def run(model_id: str, device: str, image: ImageChoice, target: TargetChoice, choice: MethodChoice) -> None:
    """Compute (or fetch) the panel with a Cancel button and store it, then run the page again (which draws
    the maps and Compute enabled); an error says what to change, beside the button."""
    if not choice.methods:
        jobs.notify(COMPUTE_KEY, "warning", "Choose at least one method.")
        st.rerun()
    try:
        with jobs.heavy(
            "saliency maps",
            cancel_message="Computation cancelled; the previous maps are kept.",
            on_error=lambda m: jobs.notify(COMPUTE_KEY, "error", m),
        ):
            session_results.put(RESULT_KEY, compute(model_id, device, image, target, choice))
    except (ValueError, ModelLoadError) as err:
        jobs.notify(COMPUTE_KEY, "error", f"{err}. Change the parameter it names and press Compute again.")
    except RuntimeError as err:  # e.g. a failed kernel
        jobs.notify(COMPUTE_KEY, "error", f"The computation failed: {err}. Try fewer methods or samples, or the CPU.")
    st.rerun()


@st.fragment
def results_view(image: ImageChoice, model_id: str, infos: dict) -> None:
    """The maps of the last Compute with their display options and faithfulness scores (a fragment: a display
    change reruns only this)."""
    record = session_results.get(RESULT_KEY)
    if record is None:
        return
    st.divider()
    if record.digest != image.digest or record.model_id != model_id:
        st.info(f"These maps are for {record.image_name} on {record.model_id}; press Compute to update them.")
    target_label = record.maps[0].target_label
    st.markdown(f"**Target:** {target_label} · {how_made(record)}")
    options = display_controls()
    saliency_views.shared_scale_note(record, options, infos)
    faithful = st.toggle(
        "Faithfulness on demand",
        key="sal_faithful",
        help="Deletion/insertion curves (Petsiuk et al. 2018), the randomisation sanity check "
        "(Adebayo et al. 2018) and class sensitivity (Rebuffi et al. 2020), per map.",
    )
    steps = 20
    if faithful:
        c1, c2, c3 = st.columns(3)
        steps = c1.slider("Deletion/insertion steps", 5, 50, 20, key="sal_steps")
        stages = c2.slider("Sanity-check stages", 2, 10, 7, key="sal_stages")
        if c3.button("Score every map", key="sal_score_all"):
            score_all(record, steps)

    def extra(m) -> None:
        if not faithful:
            return
        b1, b2, b3 = st.columns(3)
        if b3.button(
            "Class sensitivity",
            key=f"sal_class_btn_{m.method}",
            help="Spearman ρ between this method's maps for the most and the least likely class (Rebuffi et "
            "al., CVPR 2020): near 1, the map hardly depends on the class it explains; lower is better.",
        ):
            with st.spinner("Maps of the most and the least likely class…"):
                sensitivity(record, m)
        if b1.button("Deletion / insertion", key=f"sal_curve_btn_{m.method}"):
            with st.spinner("Deletion and insertion curves…"):
                score(record, m, steps)
        if b2.button("Sanity check", key=f"sal_sanity_btn_{m.method}"):
            try:
                with jobs.heavy("sanity check", cancel_message="Sanity check cancelled."):
                    sanity_check(record, m, stages)
            except (ValueError, RuntimeError) as err:
                st.error(f"Sanity check failed: {err}")
        rho = session_results.get((SENSITIVITY_KEY, record.key, m.method))
        if rho is not None:
            saliency_views.sensitivity_badge(rho)
        curves = session_results.get((SCORES_KEY, record.key, m.method, steps))
        if curves is not None:
            st.plotly_chart(saliency_views.curves_figure(curves), width="stretch", key=f"sal_curve_{m.method}")
        check = session_results.get((SANITY_KEY, record.key, m.method))
        if check is not None:
            st.plotly_chart(saliency_views.sanity_figure(check), width="stretch", key=f"sal_sanity_{m.method}")

    saliency_views.map_grid(record, options, infos, extra=extra)
    d1, d2, _ = st.columns([1, 1, 2])
    d1.download_button(
        "PNG of the grid",
        data=lambda: saliency_views.grid_png(record, options, infos),
        file_name=f"saliency_{record.image_name.rsplit('.', 1)[0]}.png",
        mime="image/png",
        icon=":material/image:",
        on_click="ignore",
    )
    d2.download_button(
        "NPZ of the raw maps",
        data=lambda: saliency_views.maps_npz(record),
        file_name=f"saliency_{record.image_name.rsplit('.', 1)[0]}.npz",
        mime="application/octet-stream",
        icon=":material/download:",
        on_click="ignore",
    )
