"""A panel of methods, checked and grouped as :func:`glimpse.saliency.explain` runs it, and what its maps measure.

Each method becomes a :class:`PanelMethod` with its full parameters and its noise tunnel (its own, as SmoothGrad's,
or the global one); :func:`groups` puts shared-pass methods with the same tunnel together, one pass per image
or noisy copy for all of them. :func:`glimpse.saliency.explain` runs the groups and
:func:`glimpse.saliency.estimate_cost` counts them; :func:`method_units` and :func:`map_units` say what a
map measures, so that maps in equal units may share a colour scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from glimpse.saliency.base import SaliencyMap, tunnel_units
from glimpse.saliency.contract import Method
from glimpse.saliency.registry import REGISTRY, get_method

NOISE_KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")
NOISE_DEFAULTS = {"kind": "smoothgrad", "samples": 25, "noise": 0.15}


@dataclass
class PanelMethod:
    """One method of a panel: its registry key, the method, its full parameters and its noise tunnel."""

    name: str
    method: Method
    params: dict
    noise_tunnel: dict | None


def check_noise_tunnel(nt: dict | None) -> dict | None:
    """``nt`` with its defaults filled in and its values checked (kind, samples >= 1, noise in [0, 1])."""
    if nt is None:
        return None
    unknown = set(nt) - set(NOISE_DEFAULTS)
    if unknown:
        raise ValueError(f"noise_tunnel: unknown option(s) {sorted(unknown)}; known: {', '.join(NOISE_DEFAULTS)}")
    out = {**NOISE_DEFAULTS, **nt}
    if out["kind"] not in NOISE_KINDS:
        raise ValueError(f"noise_tunnel: unknown kind {out['kind']!r}; known: {', '.join(NOISE_KINDS)}")
    if int(out["samples"]) < 1:
        raise ValueError(f"noise_tunnel: samples must be >= 1, got {out['samples']}")
    if not 0.0 <= float(out["noise"]) <= 1.0:
        raise ValueError(f"noise_tunnel: noise is a fraction of the input range in [0, 1], got {out['noise']}")
    return {"kind": str(out["kind"]), "samples": int(out["samples"]), "noise": float(out["noise"])}


def check_params(name: str, method: Method, given: dict, input_size: tuple[int, int] | None = None) -> dict:
    """The method's defaults for a model input of ``input_size`` (:meth:`Method.defaults`) updated with
    ``given``, each value converted to its default's type and checked."""
    info = method.info
    unknown = set(given) - set(info.params)
    if unknown:
        known = ", ".join(info.params) or "none"
        raise ValueError(f"params: unknown parameter(s) {sorted(unknown)} for method {name!r}; known: {known}")
    params = method.defaults(input_size)
    for key, value in given.items():
        default = info.params[key]
        try:
            if isinstance(default, bool):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
            elif isinstance(default, str):
                value = str(value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"params: {name}.{key} expects {type(default).__name__}, got {value!r}") from err
        if key in info.choices and value not in info.choices[key]:
            raise ValueError(
                f"params: {name}.{key} must be one of {', '.join(map(str, info.choices[key]))}, got {value!r}"
            )
        params[key] = value
    return params


def items(
    methods: Sequence[str | tuple[str, dict]], noise_tunnel: dict | None, input_size: tuple[int, int] | None = None
) -> list[PanelMethod]:
    """The checked panel: each method with its full parameters (defaults for a model input of ``input_size``)
    and its noise tunnel (its own, as SmoothGrad's, or the global ``noise_tunnel``)."""
    if isinstance(methods, (str, bytes)):
        methods = [methods]
    if not methods:
        raise ValueError("methods: give at least one method name")
    nt_all = check_noise_tunnel(noise_tunnel)
    out: list[PanelMethod] = []
    for entry in methods:
        name, given = (entry, {}) if isinstance(entry, str) else (entry[0], dict(entry[1] or {}))
        get_method(name)  # an unknown name fails here, listing the known ones
        if any(it.name == name for it in out):
            raise ValueError(f"methods: {name!r} listed twice")
        method = REGISTRY[name]
        params = check_params(name, method, given, input_size)
        own = method.own_noise_tunnel(params)
        out.append(PanelMethod(name, method, params, check_noise_tunnel(own) if own is not None else nt_all))
    return out


def layer_for(bundle, panel: list[PanelMethod], layer: str | None) -> str | None:
    """The layer CAM-family methods use: ``layer``, or the bundle's suggestion when one of them needs it."""
    if layer is None and any(it.method.info.needs_layer for it in panel):
        if not bundle.target_layers:
            raise ValueError(f"layer: {bundle.model_id} suggests no layer; pass one")
        layer = bundle.target_layers[0]
    if layer is not None:
        bundle.module(layer)  # validates, with the suggested layers in the message
    return layer


def groups(panel: list[PanelMethod]) -> list[tuple[bool, dict | None, list[PanelMethod]]]:
    """(shared, noise tunnel, members): shared-pass methods with the same noise tunnel run together (one pass
    per image or noisy copy for all of them); every other method alone."""
    out: list[tuple[bool, dict | None, list[PanelMethod]]] = []
    for it in panel:
        if it.method.shared:
            for shared, nt, members in out:
                if shared and nt == it.noise_tunnel:
                    members.append(it)
                    break
            else:
                out.append((True, it.noise_tunnel, [it]))
        else:
            out.append((False, it.noise_tunnel, [it]))
    return out


def copies_seeded(members: list[PanelMethod]) -> bool:
    """Whether a noise tunnel over ``members`` runs its copies one at a time, each with a seed of its own.

    A method that samples (GradientSHAP, RISE, LIME, ...) seeds its draws from ctx.seed: under a noise tunnel
    each noisy copy gets a seed of its own, so copies do not share draws and the result does not depend on
    the batch size (the copies then run one at a time; the method batches its own samples)."""
    return any(
        it.method.uses_seed(it.params) and it.method.own_noise_tunnel(it.params) is None  # SmoothGrad: the tunnel
        for it in members
    )


def wrapping_tunnel(it: PanelMethod) -> dict | None:
    """The noise tunnel wrapped around ``it``'s method, or None (none, or the method's own, as SmoothGrad's)."""
    return None if it.method.own_noise_tunnel(it.params) is not None else it.noise_tunnel


# --------------------------------------------------------------------------------------------------
# what a map measures
# --------------------------------------------------------------------------------------------------
def method_units(method: str, params: dict | None = None, *, noise_tunnel: dict | None = None) -> str:
    """What ``method``'s map measures with ``params`` (defaults filled in) under ``noise_tunnel``.

    Maps with equal units may share one colour scale; a method that declares none gets a unit of its own.
    A noise tunnel of kind smoothgrad_sq or vargrad squares the units (a method's own tunnel, as
    SmoothGrad's, replaces the global one, as in :func:`glimpse.saliency.explain`).

    >>> method_units("gradient"), method_units("gradient", noise_tunnel={"kind": "vargrad"})
    ('∂S/∂x', '(∂S/∂x)²')
    """
    (it,) = items([(method, params or {})], noise_tunnel)
    units = it.method.units(it.params)
    nt = wrapping_tunnel(it)
    return units if nt is None else tunnel_units(units, nt["kind"])


def map_units(saliency_map: SaliencyMap) -> str:
    """What ``saliency_map``'s values measure (see :func:`method_units`), from its method, parameters and noise
    tunnel; a layer method's units are per cell of its layer, so the layer is part of them."""
    nt = saliency_map.noise_tunnel
    units = method_units(saliency_map.method, saliency_map.param_dict, noise_tunnel=None if nt is None else dict(nt))
    return units if saliency_map.layer is None else f"{units} @ {saliency_map.layer}"
