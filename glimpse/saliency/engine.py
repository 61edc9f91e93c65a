"""Running saliency methods: targets, the shared one-pass engine, the noise tunnel, and :func:`explain`.

One pass, many maps: gradient, |gradient|, Input×Gradient, Grad-CAM, HiResCAM, XGrad-CAM, Layer-CAM,
Grad-CAM++ and NormGrad all read the same activations ``A`` and gradients ``g = ∂S/∂A`` (and ``∂S/∂x``),
so :func:`explain` groups them and runs ONE forward and ONE backward for the whole group.

Noise tunnel (Smilkov et al. 2017, SmoothGrad; Adebayo et al. 2018, VarGrad): for ``n`` samples
``x_i = x + N(0, σ²)`` with ``σ = noise · (input max − input min)``, the map is
``mean_i M(x_i)`` (smoothgrad), ``mean_i M(x_i)²`` (smoothgrad_sq) or ``var_i M(x_i)`` (vargrad), where
``M`` is the per-pixel map of the wrapped method. Samples run in batches on the device.

Before a panel runs, :func:`estimate_cost` counts the images it will push through the model, grouped as
:func:`explain` groups them, from each method's ``Method.cost``; :func:`measure_pass_time` turns counts into
seconds on this machine. :func:`map_units` says what a map measures, for a colour scale shared among maps.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glimpse.devices import synchronize
from glimpse.saliency.base import (
    NO_COST,
    SHARED_PASS,
    Attribution,
    Cost,
    CostInput,
    Method,
    SaliencyMap,
    Target,
    even_chunks,
    tunnel_units,
)
from glimpse.saliency.batching import batch_size_for
from glimpse.token_grid import tokens_to_grid

log = logging.getLogger(__name__)

NOISE_KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")
NOISE_DEFAULTS = {"kind": "smoothgrad", "samples": 25, "noise": 0.15}


# --------------------------------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------------------------------
def make_target(bundle, query: str | int | None = None, contrast: str | int | None = None, *, image=None) -> Target:
    """A :class:`Target` from class names or indices (name search via ``bundle.label_index``).

    ``query`` None means the top-1 class of ``image`` (which is then required).
    """
    if query is None or (isinstance(query, str) and not query.strip()):
        if image is None:
            raise ValueError("target: give a class (name or index) or an image to take the top-1 class from")
        index = bundle.predict(image, top=1)[0][0]
    else:
        index = bundle.label_index(query)
    other = None
    if contrast is not None and not (isinstance(contrast, str) and not contrast.strip()):
        other = bundle.label_index(contrast)
    return Target(int(index), None if other is None else int(other))


def target_label(bundle, target: Target) -> str:
    name = bundle.labels[target.index]
    if target.contrast is None:
        return name
    return f"{name} − {bundle.labels[target.contrast]}"


class ScoreModel(nn.Module):
    """The explained scalar per example, shape (B, 1): ``S_c`` or ``S_a − S_b`` (logits, or softmax
    probabilities with ``probs=True`` for Score-CAM and RISE).

    Wraps the shared classifier without changing it, so Captum (which hooks ``model`` and its children)
    sees every activation module of the classifier. Batched inputs are passed channels-last, which is
    several times faster for convolutions on CPU and gives the same values.
    """

    def __init__(self, model: nn.Module, target: Target, *, probs: bool = False, channels_last: bool = True) -> None:
        super().__init__()
        self.model = model
        self.index = int(target.index)
        self.contrast = None if target.contrast is None else int(target.contrast)
        self.probs = probs
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.ndim == 4 and x.shape[0] > 1:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.model(x)
        if not isinstance(out, torch.Tensor):  # Hugging Face ModelOutput when not already unwrapped
            out = out.logits
        out = out.float()
        if self.probs:
            out = out.softmax(-1)
        s = out[:, self.index]
        if self.contrast is not None:
            s = s - out[:, self.contrast]
        return s.unsqueeze(1)


# --------------------------------------------------------------------------------------------------
# context
# --------------------------------------------------------------------------------------------------
@dataclass
class Context:
    """Everything a method needs for one explanation. Built by :func:`explain`."""

    bundle: Any
    target: Target
    layer: str | None
    seed: int
    batch_size: int
    score: ScoreModel
    prob_score: ScoreModel
    progress: Callable[[float], None] = field(default=lambda f: None)

    @property
    def device(self) -> torch.device:
        return self.bundle.device

    @property
    def input_range(self) -> tuple[float, float]:
        return self.bundle.input_range

    def generator(self, salt: int = 0) -> torch.Generator:
        """A new CPU generator seeded from ``seed`` and ``salt`` (one salt per kind of draw).

        Every random draw of a method comes from one of these (NumPy draws from ``np.random.default_rng(seed)``),
        never from torch's, NumPy's or Python's global generator: the same seed gives the same map bit for bit,
        the caller's generators are left alone, and concurrent explanations (Streamlit sessions are threads)
        cannot disturb each other. Noise is drawn on the CPU so results match across devices; CPU draws are
        the same in one call or batch by batch.
        """
        g = torch.Generator()
        g.manual_seed((int(self.seed) * 1_000_003 + salt) % 2**63)  # any seed, within manual_seed's range
        return g

    def black(self, x: torch.Tensor) -> torch.Tensor:
        """The black image (pixel 0) in model-input units, shaped like ``x``."""
        mean = torch.tensor(self.bundle.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.bundle.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return ((0.0 - mean) / std).expand_as(x).contiguous()

    def baseline(self, kind: str, x: torch.Tensor, count: int = 1) -> torch.Tensor:
        """Baseline(s) for path methods: ``black``, ``blurred`` (Gaussian σ = 1/20 of the side) or
        ``uniform`` noise over the input range. Returns (count·B, 3, H, W)."""
        if kind == "black":
            b = self.black(x)
        elif kind == "blurred":
            b = gaussian_blur(x, sigma=max(x.shape[-2:]) / 20.0)
        elif kind == "uniform":
            lo, hi = self.input_range
            shape = (count * x.shape[0],) + tuple(x.shape[1:])
            u = torch.rand(shape, generator=self.generator(17), dtype=torch.float32)
            return (lo + (hi - lo) * u).to(x.device, x.dtype)
        else:
            raise ValueError(f"baseline: unknown {kind!r}; known: black, blurred, uniform")
        return b.repeat(count, 1, 1, 1) if count > 1 else b

    def chunks(self, n: int) -> list[slice]:
        """``n`` items in ``ceil(n / batch_size)`` batches of nearly equal size: 50 at 16 run as 13 + 13 + 12 +
        12, not 16 + 16 + 16 + 2, whose last small batch costs almost a full pass."""
        return even_chunks(n, self.batch_size)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) with reflect padding."""
    radius = max(1, int(math.ceil(3 * sigma)))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    y = F.pad(y, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(y, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


# --------------------------------------------------------------------------------------------------
# the shared pass
# --------------------------------------------------------------------------------------------------
@dataclass
class Pass:
    """One forward+backward: input ``x``, score (B,), ``dx = ∂S/∂x`` (or None), and per layer the
    activations ``acts[l]`` (B, C, h, w) and gradients ``grads[l]`` (token outputs reshaped to a grid)."""

    x: torch.Tensor
    score: torch.Tensor
    dx: torch.Tensor | None
    acts: dict
    grads: dict


def to_grid(t: torch.Tensor, bundle) -> torch.Tensor:
    """Layer output -> (B, C, h, w): ViT tokens are reshaped with the bundle's token grid."""
    if t.ndim == 4:
        return t
    if t.ndim == 3 and bundle.token_grid is not None:
        return tokens_to_grid(t, bundle.token_grid)
    raise ValueError(
        f"layer: output of shape {tuple(t.shape)} is not a (B, C, h, w) feature map"
        + ("" if bundle.token_grid is None else " or a (B, tokens, C) sequence")
        + "; pick a convolutional or transformer block"
    )


class capture:
    """Context manager: forward hooks that keep each layer's output and make it a leaf of the graph
    when nothing upstream requires grad (frozen weights, input without grad), so ``∂S/∂A`` exists.
    Hooks are removed on exit, also when the model raises."""

    def __init__(self, bundle, layers: Sequence[str]) -> None:
        self.bundle = bundle
        self.layers = list(dict.fromkeys(layers))
        self.outputs: dict[str, list[torch.Tensor]] = {}
        self.handles: list = []

    def _hook(self, name: str):
        def hook(module, inputs, output):
            t = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(t, torch.Tensor):
                t = getattr(output, "last_hidden_state", None)
                if t is None:
                    raise ValueError(f"layer: {name!r} returns {type(output).__name__}, not a tensor")
            replaced = False
            if torch.is_grad_enabled() and not t.requires_grad:
                t = t.detach().requires_grad_(True)
                replaced = True
            self.outputs.setdefault(name, []).append(t)
            if replaced:
                if isinstance(output, tuple):
                    return (t,) + tuple(output[1:])
                if isinstance(output, list):
                    return [t] + list(output[1:])
                if isinstance(output, torch.Tensor):
                    return t
            return None

        return hook

    def __enter__(self) -> capture:
        try:
            for name in self.layers:
                self.handles.append(self.bundle.module(name).register_forward_hook(self._hook(name)))
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def __exit__(self, *exc) -> None:
        self.remove()

    def get(self, name: str) -> torch.Tensor:
        outs = self.outputs.get(name, [])
        if len(outs) != 1:
            raise ValueError(
                f"layer: module {name!r} ran {len(outs)} times in one forward pass; pick a module that runs once"
            )
        return outs[0]


def run_pass(ctx: Context, x: torch.Tensor, layers: Sequence[str], need_input_grad: bool) -> Pass:
    """ONE forward and ONE backward giving ∂S/∂x (if asked) and (A, ∂S/∂A) at every layer in ``layers``."""
    layers = list(dict.fromkeys(layers))
    x = x.detach().requires_grad_(need_input_grad)
    with torch.enable_grad(), capture(ctx.bundle, layers) as cap:
        score = ctx.score(x)[:, 0]
        raw = [cap.get(name) for name in layers]
        wrt = ([x] if need_input_grad else []) + raw
        if not wrt:
            raise ValueError("methods: nothing to differentiate (no input gradient and no layer)")
        grads = torch.autograd.grad(score.sum(), wrt)
    dx = grads[0] if need_input_grad else None
    layer_grads = grads[1:] if need_input_grad else grads
    acts = {n: to_grid(a.detach(), ctx.bundle) for n, a in zip(layers, raw)}
    gacts = {n: to_grid(g.detach(), ctx.bundle) for n, g in zip(layers, layer_grads)}
    return Pass(x=x.detach(), score=score.detach(), dx=None if dx is None else dx.detach(), acts=acts, grads=gacts)


# --------------------------------------------------------------------------------------------------
# units of work and the noise tunnel
# --------------------------------------------------------------------------------------------------
@dataclass
class _Item:
    name: str  # registry key
    method: Method
    params: dict
    noise_tunnel: dict | None


def _upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps.unsqueeze(1).float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def _run_clean(ctx: Context, items: list[_Item], x: torch.Tensor, shared: bool) -> dict[str, Attribution]:
    """Attributions of ``items`` for the batch ``x`` (shared: one pass for all of them)."""
    size = tuple(x.shape[-2:])
    if shared:
        layers: list[str] = []
        for it in items:
            layers += it.method.layers(ctx, it.params)
        need_dx = any(it.method.needs_input_grad(it.params) for it in items)
        p = run_pass(ctx, x, layers, need_dx)
        return {it.name: Attribution(_upsample(it.method.from_pass(ctx, p, it.params), size)) for it in items}
    (it,) = items
    if it.method.batchable or x.shape[0] == 1:
        a = it.method.attribute(ctx, x, it.params)
    else:
        parts = [it.method.attribute(ctx, x[i : i + 1], it.params) for i in range(x.shape[0])]
        a = Attribution(torch.cat([q.maps for q in parts]))
    a.maps = _upsample(a.maps, size)
    return {it.name: a}


def _run_noisy(ctx: Context, items: list[_Item], x: torch.Tensor, shared: bool, nt: dict) -> dict[str, Attribution]:
    """Noise tunnel over ``items``: batched noisy samples, maps aggregated per pixel (see module doc)."""
    lo, hi = ctx.input_range
    sigma = float(nt["noise"]) * (hi - lo)
    n = int(nt["samples"])
    gen = ctx.generator(salt=1)
    sums: dict[str, torch.Tensor] = {}
    sq: dict[str, torch.Tensor] = {}
    outer = ctx.progress
    per_sample = _copies_seeded(items)
    chunks = [slice(i, i + 1) for i in range(n)] if per_sample else ctx.chunks(n)
    for k, sl in enumerate(chunks):
        m = sl.stop - sl.start
        noise = torch.randn((m,) + tuple(x.shape[1:]), generator=gen, dtype=torch.float32).to(x.device, x.dtype)
        xs = x + sigma * noise
        run = replace(ctx, seed=sample_seed(ctx.seed, sl.start)) if per_sample else ctx
        run.progress = lambda f, k=k: outer((k + f) / len(chunks))
        out = _run_clean(run, items, xs, shared)
        for name, a in out.items():
            maps = a.maps.detach().to("cpu", torch.float64)  # float64 on the CPU: MPS has no float64
            sums[name] = sums.get(name, 0) + maps.sum(0)
            sq[name] = sq.get(name, 0) + (maps * maps).sum(0)
        outer((k + 1) / len(chunks))
    ctx.progress = outer
    result = {}
    for name in sums:
        mean = sums[name] / n
        msq = sq[name] / n
        if nt["kind"] == "smoothgrad":
            agg = mean
        elif nt["kind"] == "smoothgrad_sq":
            agg = msq
        else:
            agg = (msq - mean * mean).clamp_min(0.0)
        result[name] = Attribution(agg.float().unsqueeze(0))
    return result


def _copies_seeded(items: list[_Item]) -> bool:
    """Whether a noise tunnel over ``items`` runs its copies one at a time, each with a seed of its own.

    A method that samples (GradientSHAP, RISE, LIME, ...) seeds its draws from ctx.seed: under a noise tunnel
    each noisy copy gets a seed of its own, so copies do not share draws and the result does not depend on
    the batch size (the copies then run one at a time; the method batches its own samples)."""
    return any(
        it.method.uses_seed(it.params) and it.method.own_noise_tunnel(it.params) is None  # SmoothGrad: the tunnel
        for it in items
    )


def sample_seed(seed: int, index: int) -> int:
    """The seed of noisy copy ``index`` of an explanation seeded with ``seed`` (distinct per copy, < 2**63)."""
    digest = hashlib.blake2b(f"{int(seed)}:{int(index)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def _check_noise_tunnel(nt: dict | None) -> dict | None:
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


def _check_params(name: str, method: Method, given: dict) -> dict:
    info = method.info
    unknown = set(given) - set(info.params)
    if unknown:
        known = ", ".join(info.params) or "none"
        raise ValueError(f"params: unknown parameter(s) {sorted(unknown)} for method {name!r}; known: {known}")
    params = dict(info.params)
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


def _items(methods: Sequence[str | tuple[str, dict]], noise_tunnel: dict | None) -> list[_Item]:
    """The validated units of work: each method with its full parameters and its noise tunnel (its own, as
    SmoothGrad's, or the global one)."""
    from glimpse.saliency.registry import REGISTRY, get_method

    if isinstance(methods, (str, bytes)):
        methods = [methods]
    if not methods:
        raise ValueError("methods: give at least one method name")
    nt_all = _check_noise_tunnel(noise_tunnel)
    items: list[_Item] = []
    for entry in methods:
        name, given = (entry, {}) if isinstance(entry, str) else (entry[0], dict(entry[1] or {}))
        get_method(name)
        if any(it.name == name for it in items):
            raise ValueError(f"methods: {name!r} listed twice")
        method = REGISTRY[name]
        params = _check_params(name, method, given)
        own = method.own_noise_tunnel(params)
        items.append(_Item(name, method, params, _check_noise_tunnel(own) if own is not None else nt_all))
    return items


def _layer(bundle, items: list[_Item], layer: str | None) -> str | None:
    """The layer CAM-family methods use: ``layer``, or the bundle's suggestion when one of them needs it."""
    needs_layer = any(it.method.info.needs_layer for it in items)
    if layer is None and needs_layer:
        if not bundle.target_layers:
            raise ValueError(f"layer: {bundle.model_id} suggests no layer; pass one")
        layer = bundle.target_layers[0]
    if layer is not None:
        bundle.module(layer)  # validates, with the suggested layers in the message
    return layer


def _groups(items: list[_Item]) -> list[tuple[bool, dict | None, list[_Item]]]:
    """(shared, noise tunnel, members): shared-pass methods with the same noise tunnel run together (one pass
    per image or noisy copy for all of them); every other method alone."""
    groups: list[tuple[bool, dict | None, list[_Item]]] = []
    for it in items:
        if it.method.shared:
            for shared, nt, members in groups:
                if shared and nt == it.noise_tunnel:
                    members.append(it)
                    break
            else:
                groups.append((True, it.noise_tunnel, [it]))
        else:
            groups.append((False, it.noise_tunnel, [it]))
    return groups


# --------------------------------------------------------------------------------------------------
# what a panel costs, before it runs
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PassTime:
    """Measured seconds per image through this machine's model (:func:`measure_pass_time`).

    ``forward_s`` and ``backward_s`` (forward+backward) are per image in a batch of ``batch_size``, the batch
    the engine runs; ``single_forward_s`` and ``single_backward_s`` are for a batch of one image.
    """

    forward_s: float
    backward_s: float
    single_forward_s: float
    single_backward_s: float
    batch_size: int

    def seconds(self, forward: int, backward: int) -> float:
        """Time of ``forward`` forward-only and ``backward`` forward+backward images run in full batches.

        A pass of ``m`` images is taken to cost ``overhead + m · per_image``, the line through the two measured
        batch sizes (``overhead = single − per_image``), and ``n`` images to run in ``ceil(n / batch_size)``
        passes. A method that runs a few separate single-image passes (DeepLIFT's score checks) is
        underestimated by one overhead per extra pass."""

        def part(n: int, per: float, single: float) -> float:
            if n <= 0:
                return 0.0
            return math.ceil(n / max(1, self.batch_size)) * max(0.0, single - per) + n * per

        return part(forward, self.forward_s, self.single_forward_s) + part(
            backward, self.backward_s, self.single_backward_s
        )


@dataclass(frozen=True)
class GroupCost:
    """Images a group of methods pays for together: a shared-pass group (several methods, one pass per image
    or noisy copy) or one method alone.

    ``each`` is the images of one run; ``runs`` is how many separate runs there are (a noise tunnel over a
    method that samples, or one that takes one image at a time, runs each noisy copy apart; other copies
    run together, in batches). ``each`` is None when the method does not declare its cost.
    """

    methods: tuple[str, ...]
    each: Cost | None
    runs: int = 1

    @property
    def cost(self) -> Cost | None:
        """All the group's images."""
        return None if self.each is None else self.each * self.runs

    def seconds(self, pass_time: PassTime) -> tuple[float, float]:
        """(fewest, most) seconds at ``pass_time``; (nan, nan) for an undeclared cost."""
        if self.each is None:
            return math.nan, math.nan
        low = pass_time.seconds(self.each.forward, self.each.backward)
        high = pass_time.seconds(*self.each.most)
        return self.runs * low, self.runs * high


@dataclass(frozen=True)
class PanelCost:
    """What :func:`explain` will push through the model for a panel of methods (:func:`estimate_cost`)."""

    groups: tuple[GroupCost, ...]

    @property
    def total(self) -> Cost:
        """All images of the methods that declare their cost (see ``unknown``)."""
        out = NO_COST
        for g in self.groups:
            if g.cost is not None:
                out = out + g.cost
        return out

    @property
    def unknown(self) -> tuple[str, ...]:
        """Methods whose cost is not declared (not counted in ``total``)."""
        return tuple(name for g in self.groups if g.each is None for name in g.methods)

    def of(self, method: str) -> GroupCost:
        """The group ``method`` pays with (its ``methods`` name the others sharing its pass)."""
        for g in self.groups:
            if method in g.methods:
                return g
        raise ValueError(f"method: {method!r} is not in this panel; panel: {', '.join(self.methods)}")

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(name for g in self.groups for name in g.methods)

    def seconds(self, pass_time: PassTime) -> tuple[float, float]:
        """(fewest, most) seconds for the declared costs at ``pass_time`` (differ for adaptive methods)."""
        low = high = 0.0
        for g in self.groups:
            if g.each is not None:
                lo, hi = g.seconds(pass_time)
                low, high = low + lo, high + hi
        return low, high


def estimate_cost(
    bundle,
    methods: Sequence[str | tuple[str, dict]],
    *,
    layer: str | None = None,
    noise_tunnel: dict | None = None,
    layer_channels: int | None = None,
) -> PanelCost:
    """The images :func:`explain` with the same arguments will push through the model, without running it.

    Grouped exactly as :func:`explain` groups: shared-pass methods with the same noise tunnel pay one
    forward+backward per image (or noisy copy) together; every other method pays its own ``Method.cost``;
    a noise tunnel (the global one, or a method's own, as SmoothGrad's) multiplies by its samples.

    Parameters
    ----------
    bundle : ClassifierBundle
        The classifier (its input size; its layer's channel count for Score-CAM).
    methods : sequence of str or (str, dict)
        As for :func:`explain`.
    layer : str or None
        As for :func:`explain` (None: the bundle's suggested layer, where a method needs one).
    noise_tunnel : dict or None
        As for :func:`explain`.
    layer_channels : int or None
        Channels of ``layer``'s output, if known; None measures them, only when a method's cost needs them,
        with one forward pass of a blank image under the bundle's lock.

    Returns
    -------
    PanelCost
        Per group of methods and in total; an explicit ``target`` is assumed (with ``target=None``,
        :func:`explain` first runs one forward pass to find the top-1 class).

    Raises
    ------
    ValueError
        Unknown method, parameter, layer or noise tunnel option, as :func:`explain` would.
    """
    items = _items(methods, noise_tunnel)
    layer = _layer(bundle, items, layer)
    measured: list[int] = [] if layer_channels is None else [int(layer_channels)]

    def channels() -> int:
        if layer is None:
            raise ValueError("layer: this method's cost depends on a layer, and none is chosen")
        if not measured:
            measured.append(_probe_channels(bundle, layer))
        return measured[0]

    where = CostInput(input_size=tuple(bundle.input_size), layer=layer, layer_channels=channels)
    out = []
    for shared, nt, members in _groups(items):
        names = tuple(it.name for it in members)
        if shared:
            each = SHARED_PASS
        else:
            (it,) = members
            each = it.method.cost(it.params, where)
        runs = 1
        if nt and each is not None:
            n = int(nt["samples"])
            # Mirrors _run_noisy and _run_clean: copies run one at a time when they are seeded apart or the
            # method takes one image at a time; otherwise together, in batches.
            apart = _copies_seeded(members) or not (shared or members[0].method.batchable)
            each, runs = (each, n) if apart else (each * n, 1)
        out.append(GroupCost(methods=names, each=each, runs=runs))
    return PanelCost(groups=tuple(out))


def _probe_channels(bundle, layer: str) -> int:
    """Channels of ``layer``'s output (a feature map, or tokens as a grid), from one blank forward pass."""
    h, w = bundle.input_size
    x = torch.zeros((1, 3, h, w), device=bundle.device)
    with bundle.lock, torch.no_grad(), capture(bundle, [layer]) as cap:
        bundle.model(x)
        return int(to_grid(cap.get(layer), bundle).shape[1])


def measure_pass_time(bundle, batch_size: int | None = None, *, repeats: int = 2) -> PassTime:
    """Seconds per image of this machine's forward and forward+backward passes, as :func:`explain` runs them.

    Times the engine's :class:`ScoreModel` (channels-last batches) on seeded noise in the model's input range,
    under the bundle's lock: a forward without gradients and a forward+backward to the input, each in a batch
    of ``batch_size`` (None: the engine's default for the device) and of one image, the best of ``repeats``
    runs after one warm-up pass, so it takes a few passes' time: cache the result per model and device.

    Returns
    -------
    PassTime
        For :meth:`PanelCost.seconds`.
    """
    if repeats < 1:
        raise ValueError(f"repeats: must be >= 1, got {repeats}")
    bs = int(batch_size or batch_size_for(bundle))
    if bs < 1:
        raise ValueError(f"batch_size: must be >= 1, got {bs}")
    h, w = bundle.input_size
    lo, hi = bundle.input_range
    g = torch.Generator().manual_seed(0)  # never torch's global generator
    xs = (lo + (hi - lo) * torch.rand((bs, 3, h, w), generator=g)).to(bundle.device)
    score = ScoreModel(bundle.model, Target(0))

    def forward(x: torch.Tensor) -> None:
        with torch.no_grad():
            score(x)

    def backward(x: torch.Tensor) -> None:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            torch.autograd.grad(score(x)[:, 0].sum(), x)

    def best(run: Callable[[torch.Tensor], None], x: torch.Tensor) -> float:
        times = []
        for _ in range(repeats):
            synchronize(bundle.device)
            t0 = time.perf_counter()
            run(x)
            synchronize(bundle.device)
            times.append(time.perf_counter() - t0)
        return min(times) / x.shape[0]

    with bundle.lock:
        backward(xs[:1])  # warm-up: lazy initialisation, kernel selection
        return PassTime(
            forward_s=best(forward, xs),
            backward_s=best(backward, xs),
            single_forward_s=best(forward, xs[:1]),
            single_backward_s=best(backward, xs[:1]),
            batch_size=bs,
        )


# --------------------------------------------------------------------------------------------------
# what a map measures
# --------------------------------------------------------------------------------------------------
def method_units(method: str, params: dict | None = None, *, noise_tunnel: dict | None = None) -> str:
    """What ``method``'s map measures with ``params`` (defaults filled in) under ``noise_tunnel``.

    Maps with equal units may share one colour scale; a method that declares none gets a unit of its own.
    A noise tunnel of kind smoothgrad_sq or vargrad squares the units (a method's own tunnel, as
    SmoothGrad's, replaces the global one, as in :func:`explain`).
    """
    (it,) = _items([(method, params or {})], noise_tunnel)
    units = it.method.units(it.params)
    if it.method.own_noise_tunnel(it.params) is None and it.noise_tunnel is not None:
        units = tunnel_units(units, it.noise_tunnel["kind"])
    return units


def map_units(saliency_map: SaliencyMap) -> str:
    """What ``saliency_map``'s values measure (see :func:`method_units`), from its method and parameters
    (a global noise tunnel is among them as ``noise_tunnel.*``); a layer method's units are per cell of its
    layer, so the layer is part of them."""
    params = saliency_map.param_dict
    nt = {k.removeprefix("noise_tunnel."): v for k, v in params.items() if k.startswith("noise_tunnel.")}
    own = {k: v for k, v in params.items() if not k.startswith("noise_tunnel.")}
    units = method_units(saliency_map.method, own, noise_tunnel=nt or None)
    return units if saliency_map.layer is None else f"{units} @ {saliency_map.layer}"


def explain(
    bundle,
    image: np.ndarray,
    methods: Sequence[str | tuple[str, dict]],
    *,
    target: Target | int | None = None,
    layer: str | None = None,
    seed: int = 0,
    noise_tunnel: dict | None = None,
    progress: Callable[[float, str], None] | None = None,
    batch_size: int | None = None,
) -> list[SaliencyMap]:
    """Saliency maps of ``image`` for each method, sharing passes where methods allow.

    Parameters
    ----------
    bundle : ClassifierBundle
        The classifier (``models.registry.load_classifier``).
    image : np.ndarray
        uint8 RGB (H, W, 3); resized to the model input by ``bundle.preprocess``.
    methods : sequence of str or (str, dict)
        Registry keys, optionally with parameter overrides (see :func:`list_methods`).
    target : Target, int or None
        Explained class (logit); None means the model's top-1 class.
    layer : str or None
        Module path for CAM-family methods; None means the bundle's suggested layer.
    seed : int
        Seeds every random draw (noise, masks, samples).
    noise_tunnel : dict or None
        ``{"kind": "smoothgrad"|"smoothgrad_sq"|"vargrad", "samples": 25, "noise": 0.15}`` applied to every
        method; ``noise`` is σ as a fraction of the input range.
    progress : callable(fraction, message) or None
        Called as work proceeds (fraction in [0, 1]).
    batch_size : int or None
        Samples per batched pass; None uses the size measured for this model on this device
        (:func:`glimpse.saliency.batching.batch_size_for`, measured once and remembered).

    Returns
    -------
    list of SaliencyMap
        In the order of ``methods``; raw signed float32 maps at the model-input resolution.

    Raises
    ------
    ValueError
        Unknown method, parameter, layer or target.
    """
    items = _items(methods, noise_tunnel)
    layer = _layer(bundle, items, layer)

    report = progress or (lambda f, m: None)
    if batch_size is None:
        # measured once per model and device (before the lock: a first measurement takes it); a panel of
        # one-pass methods never batches, so it does not wait for a measurement
        batched = any(not it.method.shared or it.noise_tunnel is not None for it in items)
        batch_size = batch_size_for(bundle) if batched else 1
    with bundle.lock:
        x = bundle.preprocess(image)
        if target is None:
            with torch.no_grad():
                logits = bundle.model(x)
                logits = logits if isinstance(logits, torch.Tensor) else logits.logits
            target = Target(int(logits[0].argmax()))
        elif not isinstance(target, Target):
            target = Target(int(target))
        for idx in (target.index, target.contrast):
            if idx is not None and not 0 <= idx < bundle.num_classes:
                raise ValueError(f"target: class index {idx} outside 0..{bundle.num_classes - 1}")
        bs = batch_size
        ctx = Context(
            bundle=bundle,
            target=target,
            layer=layer,
            seed=seed,
            batch_size=int(bs),
            score=ScoreModel(bundle.model, target),
            prob_score=ScoreModel(bundle.model, target, probs=True),
        )
        label = target_label(bundle, target)

        groups = _groups(items)
        results: dict[str, SaliencyMap] = {}
        for g, (shared, nt, members) in enumerate(groups):
            names = ", ".join(m.method.info.label for m in members)
            report(g / len(groups), f"{names}…")
            ctx.progress = lambda f, g=g, names=names: report((g + min(max(f, 0.0), 1.0)) / len(groups), names)
            t0 = time.perf_counter()
            out = _run_noisy(ctx, members, x, shared, nt) if nt else _run_clean(ctx, members, x, shared)
            seconds = (time.perf_counter() - t0) / len(members)
            for it in members:
                a = out[it.name]
                values = a.maps[0].detach().float().cpu().numpy().astype(np.float32)
                gap = None
                if it.method.info.has_completeness and not nt and a.total is not None and a.expected is not None:
                    total = float(a.total[0])
                    expected = float(a.expected[0])
                    gap = abs(total - expected) / max(abs(expected), 1e-12)
                used = dict(it.params)
                if nt and it.method.own_noise_tunnel(it.params) is None:  # SmoothGrad's tunnel is its own params
                    used.update({f"noise_tunnel.{k}": v for k, v in nt.items()})
                results[it.name] = SaliencyMap(
                    method=it.name,
                    values=values,
                    params=tuple(sorted(used.items())),
                    model_id=bundle.model_id,
                    target=target,
                    target_label=label,
                    layer=layer if it.method.info.needs_layer else None,
                    seed=int(seed),
                    completeness_gap=gap,
                    seconds=seconds,
                    extras={k: v for k, v in a.extras.items()},
                )
        report(1.0, "done")
    return [results[it.name] for it in items]
