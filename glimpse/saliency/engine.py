"""Running saliency methods: :func:`explain`, sharing one pass among methods, and the noise tunnel.

One pass, many maps: gradient, |gradient|, Input×Gradient, Grad-CAM, HiResCAM, XGrad-CAM, Layer-CAM,
Grad-CAM++ and NormGrad all read the same activations ``A`` and gradients ``g = ∂S/∂A`` (and ``∂S/∂x``),
so :func:`explain` groups them (:func:`glimpse.saliency.panel.groups`) and runs ONE forward and ONE backward
for the whole group.

Noise tunnel (Smilkov et al. 2017, SmoothGrad; Adebayo et al. 2018, VarGrad): for ``n`` samples
``x_i = x + N(0, σ²)`` with ``σ = noise · (input max − input min)``, the map is
``mean_i M(x_i)`` (smoothgrad), ``mean_i M(x_i)²`` (smoothgrad_sq) or ``var_i M(x_i)`` (vargrad), where
``M`` is the per-pixel map of the wrapped method. Samples run in batches on the device.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

import glimpse.saliency.panel as panel
from glimpse.saliency.base import SaliencyMap, Target
from glimpse.saliency.batching import batch_size_for
from glimpse.saliency.contract import Attribution, Context, ScoreModel, run_pass
from glimpse.saliency.panel import PanelMethod
from glimpse.saliency.targets import target_label, top1


def _upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps.unsqueeze(1).float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def _run_clean(ctx: Context, items: list[PanelMethod], x: torch.Tensor, shared: bool) -> dict[str, Attribution]:
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


def _run_noisy(
    ctx: Context, items: list[PanelMethod], x: torch.Tensor, shared: bool, nt: dict
) -> dict[str, Attribution]:
    """Noise tunnel over ``items``: batched noisy samples, maps aggregated per pixel (see module doc)."""
    lo, hi = ctx.input_range
    sigma = float(nt["noise"]) * (hi - lo)
    n = int(nt["samples"])
    gen = ctx.generator(salt=1)
    sums: dict[str, torch.Tensor] = {}
    sq: dict[str, torch.Tensor] = {}
    outer = ctx.progress
    per_sample = panel.copies_seeded(items)
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


def sample_seed(seed: int, index: int) -> int:
    """The seed of noisy copy ``index`` of an explanation seeded with ``seed`` (distinct per copy, < 2**63)."""
    digest = hashlib.blake2b(f"{int(seed)}:{int(index)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


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
        Registry keys, optionally with parameter overrides (see :func:`glimpse.saliency.list_methods`).
    target : Target, int or None
        Explained class (logit); None means the model's top-1 class.
    layer : str or None
        Module path for CAM-family methods; None means the bundle's suggested layer.
    seed : int
        Seeds every random draw (noise, masks, samples).
    noise_tunnel : dict or None
        ``{"kind": "smoothgrad"|"smoothgrad_sq"|"vargrad", "samples": 25, "noise": 0.15}`` applied to every
        method (but SmoothGrad, whose parameters are its own tunnel); ``noise`` is σ as a fraction of the input
        range. Each map records the tunnel it ran in, completed with the defaults, as ``SaliencyMap.noise_tunnel``.
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
    items = panel.items(methods, noise_tunnel, tuple(bundle.input_size))
    for it in items:
        why = it.method.applies(bundle)
        if why is not None:
            raise ValueError(f"method: {it.name} does not apply to {bundle.model_id}: it {why}")
    layer = panel.layer_for(bundle, items, layer)

    report = progress or (lambda f, m: None)
    if batch_size is None:
        # measured once per model and device (before the lock: a first measurement takes it); a panel of
        # one-pass methods never batches, so it does not wait for a measurement
        batched = any(not it.method.shared or it.noise_tunnel is not None for it in items)
        batch_size = batch_size_for(bundle) if batched else 1
    # The model's line is taken per group of methods, not for the whole panel: another session's click waits
    # for one group at most (a caller that holds the lock, such as a lesson, keeps it: the lock is reentrant).
    with bundle.lock:
        x = bundle.preprocess(image)
        if target is None:
            target = Target(top1(bundle, x))
    if not isinstance(target, Target):
        target = Target(int(target))
    for idx in (target.index, target.contrast):
        if idx is not None and not 0 <= idx < bundle.num_classes:
            raise ValueError(f"target: class index {idx} outside 0..{bundle.num_classes - 1}")
    ctx = Context(
        bundle=bundle,
        target=target,
        layer=layer,
        seed=seed,
        batch_size=int(batch_size),
        score=ScoreModel(bundle.model, target),
        prob_score=ScoreModel(bundle.model, target, probs=True),
    )
    label = target_label(bundle, target)

    groups = panel.groups(items)
    results: dict[str, SaliencyMap] = {}
    for g, (shared, nt, members) in enumerate(groups):
        names = ", ".join(m.method.info.label for m in members)
        if len(groups) > 1:
            names = f"{names} ({g + 1} of {len(groups)})"
        report(g / len(groups), f"{names}…")
        ctx.progress = lambda f, g=g, names=names: report((g + min(max(f, 0.0), 1.0)) / len(groups), names)
        # A perturbation method's forwards install nothing on the model: between two of its batches the line goes
        # to anyone waiting (a click waits for one batch, not for the map's hundreds of forwards).
        waited = [0.0]  # seconds spent behind others after yielding: not this map's cost

        def between(waited=waited) -> None:
            t = time.perf_counter()
            if bundle.lock.yield_turn():
                waited[0] += time.perf_counter() - t

        perturbing = all(m.method.info.family == "perturbation" for m in members)
        shares = perturbing and hasattr(bundle.lock, "yield_turn")  # a private copy's plain lock has no line
        ctx.score.between = ctx.prob_score.between = between if shares else None
        with bundle.lock:
            t0 = time.perf_counter()
            try:
                out = _run_noisy(ctx, members, x, shared, nt) if nt else _run_clean(ctx, members, x, shared)
            finally:
                ctx.score.between = ctx.prob_score.between = None
        seconds = (time.perf_counter() - t0 - waited[0]) / len(members)
        for it in members:
            a = out[it.name]
            values = a.maps[0].detach().float().cpu().numpy().astype(np.float32)
            gap = None
            if it.method.info.has_completeness and not nt and a.total is not None and a.expected is not None:
                total = float(a.total[0])
                expected = float(a.expected[0])
                gap = abs(total - expected) / max(abs(expected), 1e-12)
            wrapping = panel.wrapping_tunnel(it)
            results[it.name] = SaliencyMap(
                method=it.name,
                values=values,
                params=tuple(sorted(it.params.items())),
                model_id=bundle.model_id,
                target=target,
                target_label=label,
                layer=layer if it.method.info.needs_layer else None,
                seed=int(seed),
                completeness_gap=gap,
                seconds=seconds,
                noise_tunnel=None if wrapping is None else tuple(sorted(wrapping.items())),
                extras=dict(a.extras),
            )
    report(1.0, "done")
    return [results[it.name] for it in items]
