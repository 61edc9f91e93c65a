"""The saliency lens's widget groups: each returns a frozen request (target, methods, display options) that the
services take as their cache key, and the Compute button that starts the panel."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from torch import nn

from components import jobs, session_results
from components.image_input import ImageChoice
from components.saliency import services
from components.views import ONE_MATCH_ON_ENTER
from glimpse.display import MODE_LABELS, MODES, colour_maps
from glimpse.saliency import REGISTRY
from models.registry import ClassifierBundle, ModelLoadError

#: The "Explain class" value meaning "the current image's top-1 prediction".
TOP1 = -1
#: Shown when the page opens: all four share ONE forward+backward pass (well under a second on CPU).
DEFAULT_METHODS = ("gradient", "input_x_gradient", "gradcam", "gradcampp")
NOISE_KINDS = {"smoothgrad": "SmoothGrad", "smoothgrad_sq": "SmoothGrad²", "vargrad": "VarGrad"}
#: The colour map a magnitude opens with on this page (of ``glimpse.display.SEQUENTIAL_MAPS``).
MAGNITUDE_DEFAULT = "Inferno"
#: the Compute button's key (its press starts the panel; it is disabled while the panel runs)
COMPUTE_KEY = "sal_compute"


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
    mode: str = "signed"  # one of glimpse.display.MODES
    shared_scale: bool = False
    clip: float = 99.5  # percentile of |value| (or value) that maps to the end of the colour bar
    opacity: float = 0.6
    colorscale: str = "RdBu_r"
    columns: int = 3
    teaching: bool = False


def target_key(bundle: ClassifierBundle) -> str:
    """The session-state key of the "Explain class" box for ``bundle``'s model."""
    return f"sal_target::{bundle.model_id}"


def target_controls(bundle: ClassifierBundle, top: list[tuple[int, str, float]]) -> TargetChoice:
    """Target class (top-1 by default, any class by name search) and an optional contrast class.

    The top-1 choice is the sentinel ``TOP1`` (-1), not None: Streamlit's selectbox reads a None value as "no
    selection", so after the image changed it showed the previous image's top-1, then "Choose an option".
    """
    options = [TOP1, *range(bundle.num_classes)]

    def name(i):
        return "Top-1 prediction" if i == TOP1 else f"{bundle.labels[i]} · #{i}"

    # The top-1 entry's label stays the same and the class it stands for is named below it: in the browser a
    # selectbox keeps showing the old label of a selected option whose label changed (it showed the previous
    # image's top-1 after the image changed). One widget per model: class #5 of one model is not #5 of another.
    chosen = st.selectbox(
        "Explain class",
        options,
        format_func=name,
        key=target_key(bundle),
        help="Type to search the class names.",
    )
    index = None if chosen == TOP1 else chosen
    if index is None and top:
        st.caption(f"Explaining the top-1 prediction: **{top[0][1]}** (#{top[0][0]})")
    contrast = None
    if st.toggle("Contrast with another class (A − B)", key="sal_contrast_on"):
        default = top[1][0] if len(top) > 1 else 0
        contrast = st.selectbox(
            "…minus class",
            range(bundle.num_classes),
            index=default,
            format_func=lambda i: f"{bundle.labels[i]} · #{i}",
            key=f"sal_contrast::{bundle.model_id}",
        )
        chosen = top[0][0] if index is None and top else index
        if contrast == chosen:
            st.warning("The contrast class equals the target class; pick another one.")
            contrast = None
    return TargetChoice(index=index, contrast=contrast)


def method_picker(infos: list, bundle=None) -> list[str]:
    """A multiselect of the registry's methods, ordered by family (gradient, cam, perturbation, attention); a
    method that does not apply to ``bundle``'s model (the attention methods on a CNN) is left out, and a caption
    says which and why.

    ``?methods=gradient,gradcam`` in the page URL preselects methods (shareable demo links).
    """
    order = {"gradient": 0, "cam": 1, "perturbation": 2, "attention": 3}
    hidden = {} if bundle is None else {m.name: REGISTRY[m.name].applies(bundle) for m in infos}
    hidden = {n: why for n, why in hidden.items() if why is not None}
    infos = sorted((m for m in infos if m.name not in hidden), key=lambda m: (order.get(m.family, 9), m.label))
    by_name = {m.name: m for m in infos}
    default = [n for n in DEFAULT_METHODS if n in by_name]
    wanted = st.query_params.get("methods")
    if wanted and "sal_methods" not in st.session_state:
        names = [n.strip() for n in wanted.split(",") if n.strip()]
        unknown = [n for n in names if n not in by_name and n not in hidden]
        if unknown:
            st.warning(f"Unknown method(s) in the link: {', '.join(unknown)}; known: {', '.join(by_name)}")
        for n in (n for n in names if n in hidden):
            st.warning(f"{n} in the link does not apply to `{bundle.model_id}`: it {hidden[n]}.")
        default = [n for n in names if n in by_name] or default

    def label(n: str) -> str:
        info = by_name[n]
        marks = (" · slow" if info.slow else "") + (" · random" if REGISTRY[n].uses_seed(info.params) else "")
        return f"{info.label} ({info.family}){marks}"

    if hidden:
        reasons = sorted(set(hidden.values()))
        st.caption(f"Not offered for `{bundle.model_id}`: {', '.join(hidden)} (each {'; '.join(reasons)}).")
    return st.multiselect(
        "Methods",
        list(by_name),
        default=default,
        format_func=label,
        key="sal_methods",
        **ONE_MATCH_ON_ENTER,
        help="Ordered by family: gradient, cam, perturbation, attention (vision transformers only); 'slow' marks methods that take seconds (a progress bar "
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


def _param_widget(method: str, name: str, default, choices: dict, size: tuple[int, int] | None = None):
    # a default that depends on the model's input size (occlusion's window) gets a widget per size, so that a
    # model of another size starts from its own default instead of the last model's value
    key = f"sal_param_{method}_{name}" + ("" if size is None else f"_{size[0]}x{size[1]}")
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


def _method_params(selected: list[str], infos: dict, input_size: tuple[int, int]) -> list[tuple[str, tuple]]:
    """Each selected method with its parameters' widgets' values (starting from its defaults for a model input
    of ``input_size``), in the order selected."""
    methods = []
    with st.expander("Method parameters", expanded=False):
        for name in selected:
            info = infos[name]
            if not info.params:
                continue
            st.markdown(f"**{info.label}**")
            cols = st.columns(min(3, len(info.params)))
            params = {}
            defaults = REGISTRY[name].defaults(input_size)
            for i, (pname, default) in enumerate(defaults.items()):
                sized = None if default == info.params[pname] else input_size
                with cols[i % len(cols)]:
                    params[pname] = _hashable(_param_widget(name, pname, default, info.choices, sized))
            methods.append((name, tuple(sorted(params.items()))))
        if not any(infos[n].params for n in selected):
            st.caption("The selected methods have no parameters.")
    have = {m for m, _ in methods}
    methods += [(n, ()) for n in selected if n not in have]
    order = {n: i for i, n in enumerate(selected)}
    return sorted(methods, key=lambda m: order[m[0]])


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
    methods = _method_params(selected, infos, tuple(bundle.input_size))
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


def display_controls() -> DisplayOptions:
    """Display options; they only re-slice the stored result (call inside the fragment)."""
    c1, c2, c3, c4 = st.columns([1.3, 1, 1, 1])
    chosen = {}
    with c1:
        chosen["mode"] = mode = st.radio(
            "Values",
            MODES,
            format_func=MODE_LABELS.get,
            horizontal=True,
            key="sal_mode",
            help="The raw map is kept. min–max stretches each map to its own range (for maps such as RISE whose "
            "values all sit far from zero).",
        )
        chosen["shared_scale"] = st.toggle(
            "Shared colour scale",
            key="sal_shared",
            help="On: maps in the same units (e.g. the gradient and SmoothGrad; Input×Gradient, IG, DeepLIFT and "
            "GradientSHAP) share one range, so their magnitudes compare; other maps keep their own. Off: each map "
            "uses its own range.",
        )
    with c2:
        scales = colour_maps(mode)
        default = scales.index(MAGNITUDE_DEFAULT) if MAGNITUDE_DEFAULT in scales else 0
        chosen["colorscale"] = st.selectbox("Colour map", scales, index=default, key=f"sal_cmap_{mode}")
        chosen["clip"] = st.slider("Clip at percentile", 90.0, 100.0, 99.5, 0.1, key="sal_clip")
    with c3:
        chosen["opacity"] = st.slider("Opacity", 0.0, 1.0, 0.6, 0.05, key="sal_opacity")
        chosen["columns"] = st.slider("Columns", 1, 6, 3, key="sal_columns")
    with c4:
        chosen["teaching"] = st.toggle("Teaching mode", key="sal_teaching", help="Each method's idea and its paper.")
    return DisplayOptions(**chosen)


def faithfulness_controls() -> tuple[bool, int, int, bool]:
    """(on, deletion/insertion steps, sanity-check stages, "Score every map" pressed)."""
    faithful = st.toggle(
        "Faithfulness on demand",
        key="sal_faithful",
        help="Deletion/insertion curves (Petsiuk et al. 2018), the randomisation sanity check "
        "(Adebayo et al. 2018) and class sensitivity (Rebuffi et al. 2020), per map.",
    )
    if not faithful:
        return False, 20, 7, False
    c1, c2, c3 = st.columns(3)
    steps = c1.slider("Deletion/insertion steps", 5, 50, 20, key="sal_steps")
    stages = c2.slider("Sanity-check stages", 2, 10, 7, key="sal_stages")
    return True, steps, stages, c3.button("Score every map", key="sal_score_all")


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
            session_results.put(services.RESULT_KEY, services.compute(model_id, device, image, target, choice))
    except (ValueError, ModelLoadError) as err:
        jobs.notify(COMPUTE_KEY, "error", f"{err}. Change the parameter it names and press Compute again.")
    except RuntimeError as err:  # e.g. a failed kernel
        jobs.notify(COMPUTE_KEY, "error", f"The computation failed: {err}. Try fewer methods or samples, or the CPU.")
    st.rerun()
