"""Integrated Gradients (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017).

``IG_i(x) = (x_i − x'_i) · ∫₀¹ ∂S(x' + α(x − x'))/∂x_i dα``. Completeness: ``Σ_i IG_i = S(x) − S(x')``.

The integral is a quadrature over the path. Captum's fixed rules (Gauss-Legendre, Riemann) are offered, but
the default is an adaptive composite trapezoid rule, because on ReLU6 networks the path integrand
``g(α) = ∇S · (x − x')`` is rough and concentrated: with a black baseline most of ``S(x) − S(x')`` is gained
over a few percent of the path, where ``g`` jumps at every ReLU6 kink that the path crosses, so uniformly
spaced nodes spend most of the budget where nothing happens (the README and ``bench/saliency.py`` give the
completeness gaps of both rules on the embedded model).

The adaptive rule uses what every gradient pass gives for free: the forward value ``S(α)`` at each node.
The exact integral of ``g`` over an interval ``[a, b]`` is ``S(b) − S(a)``, so each interval's quadrature
error is known exactly, and the intervals with the largest error are bisected, one batch of new nodes at a
time, until the step budget is spent (and, with ``tolerance``, until the completeness gap is below it or
``max_steps`` is reached). The attributions remain an ordinary quadrature of the gradient — the known
interval integrals only decide where to place nodes — so the reported completeness gap is the honest error
of the sum. Per pixel the gain is smaller than for the sum (the map's error is about Gauss-Legendre's at the
same budget), so the rule mainly makes the sum trustworthy, which is what the completeness check reads.
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import IntegratedGradients as CaptumIG

from glimpse.saliency.base import Cost, MethodInfo, even_chunks
from glimpse.saliency.contract import BASELINES, Attribution, Method
from glimpse.saliency.methods._common import quiet_captum, score_of

RULES = ["adaptive", "gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left", "riemann_right"]
#: nodes of the adaptive rule's first, uniform grid (at least); later nodes go where the error is
FIRST_GRID = 17
#: Nodes added per refinement round (evaluated in batches of the device's size).
ROUND = 16


class IntegratedGradients(Method):
    info = MethodInfo(
        name="integrated_gradients",
        label="Integrated Gradients",
        family="gradient",
        params={"steps": 50, "baseline": "black", "rule": "adaptive", "tolerance": 0.01, "max_steps": 400},
        choices={"baseline": BASELINES, "rule": RULES},
        explanation="Averages the gradient along a straight path from a baseline (black, blurred, noise or mean colour) to the\n"
        "image and multiplies by (x − baseline); the attributions add up to S(x) − S(baseline).",
        citation="Sundararajan, Taly & Yan, Axiomatic Attribution for Deep Networks, ICML 2017",
        slow=True,
        has_completeness=True,
        stochastic=True,
        units="ΔS per pixel",  # the attributions add up to S(x) − S(baseline)
    )

    def cost(self, params, where):
        steps = int(params["steps"])
        if params["rule"] != "adaptive":
            return Cost(forward=2, backward=steps)  # Captum's path, then S(x) and S(baseline) for the gap
        # Every node is one forward+backward: exactly ``steps`` without refinement, up to max_steps with it.
        most = max(steps, int(params["max_steps"])) if float(params["tolerance"]) > 0 else steps
        return Cost(forward=0, backward=steps, backward_max=most if most > steps else None)

    def uses_seed(self, params):
        return params["baseline"] == "uniform"  # the noise baseline is drawn; black and blurred are fixed

    def attribute(self, ctx, x, params):
        steps, rule = int(params["steps"]), params["rule"]
        if steps < 2:
            raise ValueError(f"params: integrated_gradients.steps must be >= 2, got {steps}")
        baseline = ctx.baseline(params["baseline"], x)
        if rule == "adaptive":
            tolerance, max_steps = float(params["tolerance"]), int(params["max_steps"])
            if tolerance < 0:
                raise ValueError(f"params: integrated_gradients.tolerance must be >= 0, got {tolerance}")
            runs = [
                adaptive_path_integral(ctx, x[i : i + 1], baseline[i : i + 1], steps, tolerance, max(steps, max_steps))
                for i in range(x.shape[0])
            ]
            maps, total, expected, used = (list(col) for col in zip(*runs))
            return Attribution(
                torch.cat(maps),
                total=torch.tensor(total, dtype=torch.float64),
                expected=torch.tensor(expected, dtype=torch.float64),
                extras={"steps_used": np.asarray(used, dtype=np.int32)},
            )
        ig = CaptumIG(ctx.score, multiply_by_inputs=True)
        with quiet_captum():
            attr = ig.attribute(
                x, baselines=baseline, target=0, n_steps=steps, method=rule, internal_batch_size=ctx.batch_size
            )
        s = score_of(ctx, x)
        s0 = score_of(ctx, baseline)
        return Attribution(attr.detach().sum(1), total=attr.detach().flatten(1).sum(1), expected=s - s0)


def adaptive_path_integral(ctx, x, x0, steps: int, tolerance: float, max_steps: int):
    """IG of one image by adaptive composite trapezoid quadrature (see the module docstring).

    Returns ``(map (1, H, W), Σ attribution, S(x) − S(x0), nodes used)``. Each node costs one forward and
    backward pass, batched ``ctx.batch_size`` at a time. Nodes are added ``ROUND`` at a time whatever the
    batch size, so where they go (and the map) does not depend on the device; the first grid is sized so
    that the rounds fill the budget.
    """
    d = (x - x0).detach()
    alphas: list[float] = []
    g_at: list[float] = []  # g(α) = ∇S · (x − x0)
    s_at: list[float] = []  # S(α)
    map_at: list[torch.Tensor] = []  # Σ_channels ∇S ⊙ (x − x0), (H, W)

    def evaluate(new: list[float]) -> None:
        a = torch.tensor(new, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)
        for sl in even_chunks(len(new), bs):
            xi = (x0 + a[sl] * d).requires_grad_(True)
            s = ctx.score(xi)[:, 0]
            (grad,) = torch.autograd.grad(s.sum(), xi)
            m = (grad * d).sum(1).detach()
            alphas.extend(new[sl])
            g_at.extend(m.to("cpu", torch.float64).flatten(1).sum(1).tolist())  # MPS has no float64
            s_at.extend(s.detach().to("cpu", torch.float64).tolist())
            map_at.extend(m)
        n = len(alphas)
        if tolerance > 0 and max_steps > steps:  # the budget is 90 % of the bar, refinement the rest
            ctx.progress(0.9 * min(1.0, n / steps) + 0.1 * max(0.0, (n - steps) / (max_steps - steps)))
        else:
            ctx.progress(min(1.0, n / steps))

    def intervals():
        order = np.argsort(alphas)
        a, g, s = (np.asarray(v)[order] for v in (alphas, g_at, s_at))
        h = np.diff(a)
        error = h * (g[:-1] + g[1:]) / 2 - np.diff(s)  # trapezoid minus the exact ∫g = ΔS
        return order, a, h, error, s[-1] - s[0]

    bs = max(1, int(ctx.batch_size))
    rounds = max(0, (steps - FIRST_GRID) // ROUND)
    first = steps - rounds * ROUND
    evaluate(np.linspace(0.0, 1.0, first).tolist())
    while True:
        order, a, h, error, expected = intervals()
        n = len(alphas)
        if n >= steps and (tolerance <= 0 or abs(error.sum()) <= tolerance * abs(expected) or n >= max_steps):
            break
        k = min(ROUND, (steps if n < steps else max_steps) - n)
        evaluate(_split_points(a, error, k))

    weights = np.zeros(len(a))
    weights[:-1] += h / 2
    weights[1:] += h / 2
    stacked = torch.stack([map_at[i] for i in order])
    w = torch.tensor(weights, dtype=stacked.dtype, device=stacked.device).view(-1, 1, 1)
    total = float((weights * np.asarray(g_at)[order]).sum())
    return (stacked * w).sum(0, keepdim=True), total, float(expected), len(alphas)


def _split_points(a: np.ndarray, error: np.ndarray, k: int) -> list[float]:
    """``k`` new nodes: handed out one at a time to the interval whose error, divided by the number of parts
    it would then have, is largest (an interval with a large error gets several evenly spaced nodes)."""
    parts = np.ones(len(error), dtype=np.int64)
    size = np.abs(error)
    for _ in range(k):
        j = int(np.argmax(size / parts))
        parts[j] += 1
    points = []
    for j in np.flatnonzero(parts > 1):
        points.extend(np.linspace(a[j], a[j + 1], parts[j] + 1)[1:-1].tolist())
    return points
