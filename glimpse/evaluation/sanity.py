"""Cascading model-parameter randomisation (Adebayo et al., "Sanity Checks for Saliency Maps",
NeurIPS 2018).

Starting from the output layer, re-initialise the model's parameters one stage at a time (cumulatively,
towards the input) and recompute the map. A map that explains the *model* must change as the model
is destroyed; one that barely changes (Guided Backprop is the classic case) mostly reflects the image.
Per stage we report the Spearman rank correlation ρ(|M_trained|, |M_randomised|) and the SSIM of the two
maps after each is min-max normalised to [0, 1], as in the paper.

The shared model is never touched: the cascade runs on a deep copy inside a bundle copy with its own lock.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity
from torch import nn

#: Default number of cascade stages after the trained model (stage 0).
DEFAULT_STAGES = 7


@dataclass(frozen=True)
class SanityResult:
    """Maps and similarity scores along the randomisation cascade.

    ``stages[0]`` is ``"trained"`` (identity: ρ = 1, SSIM = 1); ``stages[k]`` names the deepest
    (input-most) unit re-initialised by stage k, all units above it being random too. ``maps`` is
    (stages, h, w) float32 raw maps. ρ or SSIM is NaN where a map is constant (undefined rank/structure).
    """

    method: str
    stages: tuple[str, ...]
    randomised: tuple[tuple[str, ...], ...]  # units re-initialised (cumulative) at each stage
    spearman: np.ndarray
    ssim: np.ndarray
    maps: np.ndarray
    model_id: str
    target: int
    layer: str | None
    seed: int
    seconds: float


def parameter_units(model: nn.Module) -> list[str]:
    """Module paths with parameters, in forward (definition) order, one level into containers.

    Top-level children with parameters are units; an ``nn.Sequential``/``nn.ModuleList`` child (e.g.
    ``blocks``) contributes its children (``blocks.0``, ``blocks.1``, ...).
    """
    units: list[str] = []
    for name, child in model.named_children():
        if not any(True for _ in child.parameters()):
            continue
        if isinstance(child, (nn.Sequential, nn.ModuleList)):
            units.extend(f"{name}.{sub}" for sub, m in child.named_children() if any(True for _ in m.parameters()))
        else:
            units.append(name)
    if not units:
        raise ValueError("model: no module with parameters to randomise")
    return units


def cascade(model: nn.Module, n_stages: int = DEFAULT_STAGES) -> list[list[str]]:
    """Split the units, output side first, into ``n_stages`` cumulative stages.

    The first stage is the output unit alone (e.g. ``fc``); the last randomises every unit. Stage
    boundaries are spaced evenly over the reversed unit list.
    """
    if n_stages < 1:
        raise ValueError(f"stages: must be at least 1, got {n_stages}")
    top_down = parameter_units(model)[::-1]
    n = min(n_stages, len(top_down))
    ends = sorted({int(round(e)) for e in np.linspace(0, len(top_down) - 1, n)})
    return [top_down[: e + 1] for e in ends]


def _reinitialise(module: nn.Module) -> None:
    for m in module.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset):
            reset()


def _scores(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    a, b = np.abs(reference), np.abs(other)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan")
    rho = float(spearmanr(a.ravel(), b.ravel()).statistic)
    an = (a - a.min()) / np.ptp(a)
    bn = (b - b.min()) / np.ptp(b)
    ssim = float(structural_similarity(an, bn, data_range=1.0))
    return rho, ssim


def _default_map_fn(method: str, layer: str | None, seed: int, params: dict | None) -> Callable:
    from glimpse.saliency import explain

    spec = (method, dict(params)) if params else method

    def run(bundle, image: np.ndarray, target: int) -> np.ndarray:
        return explain(bundle, image, [spec], target=target, layer=layer, seed=seed)[0].values

    return run


def randomisation_check(
    bundle,
    image: np.ndarray,
    method: str,
    *,
    target: int,
    layer: str | None = None,
    params: dict | None = None,
    stages: int = DEFAULT_STAGES,
    seed: int = 0,
    map_fn: Callable[[object, np.ndarray, int], np.ndarray] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> SanityResult:
    """Cascading randomisation check of one saliency method (Adebayo et al. 2018).

    Parameters
    ----------
    bundle : ClassifierBundle
        The trained classifier; it is deep-copied, never modified.
    image : ndarray, uint8 (H, W, 3)
    method : str
        Registry name of the method (``glimpse.saliency``).
    target : int
        Class explained; kept fixed along the cascade.
    layer, params, seed
        Passed to :func:`glimpse.saliency.explain`.
    stages : int
        Number of randomisation stages after the trained model (output layer first, all layers last).
    map_fn : callable, optional
        ``map_fn(bundle, image, target) -> (h, w) map``; defaults to ``explain`` with ``method``.
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    SanityResult
        Per stage: ρ_s = Spearman(|M_0|, |M_s|) and SSIM of min-max normalised |M|; stage 0 is 1 by
        construction. Re-initialisation uses each module's ``reset_parameters`` under ``torch.manual_seed(seed)``
        (the global RNG is restored afterwards).
    """
    t0 = time.perf_counter()
    run = map_fn or _default_map_fn(method, layer, seed, params)
    plan = cascade(bundle.model, stages)
    with bundle.lock:
        model = copy.deepcopy(bundle.model)
    work = dataclasses.replace(bundle, model=model, lock=threading.RLock())

    reference = np.asarray(run(work, image, target), dtype=np.float32)
    maps = [reference]
    names = ["trained"]
    done: list[str] = []
    devices = [bundle.device.index or 0] if bundle.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for k, units in enumerate(plan):
            if progress is not None:
                progress(k / len(plan), f"randomising down to {units[-1]}")
            with torch.no_grad():
                for unit in units[len(done) :]:
                    _reinitialise(model.get_submodule(unit))
            done = list(units)
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
            maps.append(np.asarray(run(work, image, target), dtype=np.float32))
            names.append(units[-1])
    if progress is not None:
        progress(1.0, "done")

    pairs = [_scores(reference, m) for m in maps]
    pairs[0] = (1.0, 1.0)
    return SanityResult(
        method=method,
        stages=tuple(names),
        randomised=((),) + tuple(tuple(u) for u in plan),
        spearman=np.array([p[0] for p in pairs], dtype=np.float64),
        ssim=np.array([p[1] for p in pairs], dtype=np.float64),
        maps=np.stack(maps).astype(np.float32),
        model_id=bundle.model_id,
        target=int(target),
        layer=layer,
        seed=seed,
        seconds=time.perf_counter() - t0,
    )
