"""Cascading model-parameter randomisation (Adebayo et al., "Sanity Checks for Saliency Maps",
NeurIPS 2018).

Starting from the output layer, re-initialise the model's parameters one stage at a time (cumulatively,
towards the input) and recompute the map. A map that explains the *model* must change as the model
is destroyed; one that barely changes (Guided Backprop is the classic case) mostly reflects the image.
Per stage we report the Spearman rank correlation ρ(|M_trained|, |M_randomised|) and the SSIM of the two
maps after each is min-max normalised to [0, 1], as in the paper.

The shared model is never touched: the cascade runs on a deep copy inside a bundle copy with its own lock.
The re-initialisation draws from a private CPU generator seeded with ``seed``: torch's global generator is
neither read nor moved (Streamlit sessions run in threads, so seeding it would race with theirs), and the
random weights are the same on every device.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity
from torch import nn
from torch.overrides import TorchFunctionMode

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


#: torch functions that draw random numbers and accept ``generator=``.
_DRAWS = frozenset(
    {
        torch.rand, torch.randn, torch.randint, torch.randperm, torch.rand_like, torch.randn_like,
        torch.randint_like, torch.normal, torch.bernoulli, torch.multinomial, torch.poisson,
        torch.Tensor.uniform_, torch.Tensor.normal_, torch.Tensor.random_, torch.Tensor.bernoulli_,
        torch.Tensor.bernoulli, torch.Tensor.exponential_, torch.Tensor.geometric_, torch.Tensor.log_normal_,
        torch.Tensor.cauchy_, torch.Tensor.multinomial,
    }
)  # fmt: skip
#: ... and functions that draw from the global generator and accept none.
_UNSEEDABLE = frozenset(
    {
        F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout, F.rrelu,
        F.gumbel_softmax, F.fractional_max_pool2d, F.fractional_max_pool3d, torch.dropout, torch.alpha_dropout,
        torch.feature_dropout, torch.feature_alpha_dropout, torch.rrelu,
    }
)  # fmt: skip


@functools.cache
def _takes_generator(func) -> bool:
    if func in _DRAWS:
        return True
    try:
        return "generator" in inspect.signature(func).parameters
    except (TypeError, ValueError):  # builtins without a Python signature draw nothing we know of
        return False


class _DrawFrom(TorchFunctionMode):
    """Inside the block, every torch call that draws random numbers without a ``generator`` gets ``generator``.

    Torch-function modes are thread-local, so another thread's draws are untouched; functions that can only
    draw from the global generator raise instead of silently moving it. ``torch.nn.init`` functions are
    intercepted as a whole (they take ``generator=``); code that calls ``tensor.uniform_()`` directly is
    intercepted at that call.
    """

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.generator = generator

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in _UNSEEDABLE:
            name = getattr(func, "__name__", str(func))
            raise ValueError(f"model: re-initialisation calls {name}, which only draws from torch's global generator")
        if kwargs.get("generator") is None and _takes_generator(func):
            kwargs["generator"] = self.generator
        return func(*args, **kwargs)


def _reinitialise(module: nn.Module, generator: torch.Generator) -> None:
    """Each submodule's ``reset_parameters``, drawing from the CPU ``generator`` (run on the CPU, then moved
    back, so the weights are the same whatever the device)."""
    tensors = [*module.parameters(), *module.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    if device.type != "cpu":
        module.to("cpu")
    try:
        with _DrawFrom(generator):
            for m in module.modules():
                reset = getattr(m, "reset_parameters", None)
                if callable(reset):
                    reset()
    finally:
        if device.type != "cpu":
            module.to(device)


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
        construction. Re-initialisation uses each module's ``reset_parameters`` with every draw taken from a
        private CPU generator seeded with ``seed`` (on the CPU, the weights ``torch.manual_seed(seed)`` would
        give); no global generator is used or changed.
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
    generator = torch.Generator().manual_seed(int(seed))
    for k, units in enumerate(plan):
        if progress is not None:
            progress(k / len(plan), f"randomising down to {units[-1]}")
        with torch.no_grad():
            for unit in units[len(done) :]:
                _reinitialise(model.get_submodule(unit), generator)
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
