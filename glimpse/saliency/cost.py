"""What a panel costs before it runs: images through the model, and seconds on this machine.

:func:`estimate_cost` counts the images :func:`glimpse.saliency.explain` will push through the model, grouped as
it groups them (:mod:`glimpse.saliency.panel`), from each method's ``Method.cost``; :func:`measure_pass_time`
turns counts into seconds on this machine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

import glimpse.saliency.panel as panel
from glimpse.devices import synchronize
from glimpse.saliency.base import NO_COST, SHARED_PASS, Cost, CostInput, Target
from glimpse.saliency.batching import batch_size_for
from glimpse.saliency.contract import ScoreModel, capture, to_grid


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
    """What :func:`~glimpse.saliency.explain` will push through the model for a panel of methods (:func:`estimate_cost`)."""

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
    """The images :func:`~glimpse.saliency.explain` with the same arguments will push through the model, without running it.

    Grouped exactly as :func:`~glimpse.saliency.explain` groups: shared-pass methods with the same noise tunnel pay one
    forward+backward per image (or noisy copy) together; every other method pays its own ``Method.cost``;
    a noise tunnel (the global one, or a method's own, as SmoothGrad's) multiplies by its samples.

    Parameters
    ----------
    bundle : ClassifierBundle
        The classifier (its input size; its layer's channel count for Score-CAM).
    methods : sequence of str or (str, dict)
        As for :func:`~glimpse.saliency.explain`.
    layer : str or None
        As for :func:`~glimpse.saliency.explain` (None: the bundle's suggested layer, where a method needs one).
    noise_tunnel : dict or None
        As for :func:`~glimpse.saliency.explain`.
    layer_channels : int or None
        Channels of ``layer``'s output, if known; None measures them, only when a method's cost needs them,
        with one forward pass of a blank image under the bundle's lock.

    Returns
    -------
    PanelCost
        Per group of methods and in total; an explicit ``target`` is assumed (with ``target=None``,
        :func:`~glimpse.saliency.explain` first runs one forward pass to find the top-1 class).

    Raises
    ------
    ValueError
        Unknown method, parameter, layer or noise tunnel option, as :func:`~glimpse.saliency.explain` would.
    """
    items = panel.items(methods, noise_tunnel, tuple(bundle.input_size))
    layer = panel.layer_for(bundle, items, layer)
    measured: list[int] = [] if layer_channels is None else [int(layer_channels)]

    def channels() -> int:
        if layer is None:
            raise ValueError("layer: this method's cost depends on a layer, and none is chosen")
        if not measured:
            measured.append(_probe_channels(bundle, layer))
        return measured[0]

    where = CostInput(input_size=tuple(bundle.input_size), layer=layer, layer_channels=channels)
    out = []
    for shared, nt, members in panel.groups(items):
        names = tuple(it.name for it in members)
        if shared:
            each = SHARED_PASS
        else:
            (it,) = members
            each = it.method.cost(it.params, where)
        runs = 1
        if nt and each is not None:
            n = int(nt["samples"])
            # Mirrors the engine's noise tunnel: copies run one at a time when they are seeded apart or the
            # method takes one image at a time; otherwise together, in batches.
            apart = panel.copies_seeded(members) or not (shared or members[0].method.batchable)
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
    """Seconds per image of this machine's forward and forward+backward passes, as :func:`~glimpse.saliency.explain` runs them.

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
