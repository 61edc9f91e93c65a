"""GradientSHAP (Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017):
expected gradients, with Captum's ``GradientShap`` conventions, drawn from Glimpse's seeded generators.

For each input x and each of ``n`` samples i:

- a baseline ``b_i`` drawn uniformly, with replacement, from the K baselines (Captum: ``np.random.choice``);
- a noisy input ``x̃_i = x + ε_i``, ``ε_i ~ N(0, σ²)`` per element, drawn independently of the baseline, with
  ``σ = noise · (input max − input min)`` (Captum's ``stdevs`` is this absolute σ);
- a path point ``α_i ~ U(0, 1)`` and ``p_i = α_i x̃_i + (1 − α_i) b_i``;

``φ = 1/n Σ_i (x̃_i − b_i) ⊙ ∂S/∂x (p_i)`` (the difference uses the *noisy* input, as Captum's
InputBaselineXGradient does). For every draw ``E_α[(x̃ − b) ⊙ ∇S(p)]`` sums to ``S(x̃) − S(b)``, so
``E[Σ φ] = E_ε[S(x + ε)] − mean_k S(b_k)``; the completeness gap shown compares the finite-sample sum with
``S(x) − mean_k S(b_k)``. For a linear model each sample is exact: ``Σ (x̃_i − b_i) ⊙ w = S(x̃_i) − S(b_i)``.

Captum draws the baseline indices and α from NumPy's global generator and the noise from torch's, so its
maps change from run to run and it moves the caller's generators; here each kind of draw has its own CPU
generator seeded from ``explain``'s seed (``ctx.generator``), and the n·B samples run in batches of
``ctx.batch_size``. CPU draws are the same in one go or batch by batch, so the map does not depend on the
batch size beyond float rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from glimpse.saliency.base import Cost, MethodInfo
from glimpse.saliency.contract import BASELINES, Attribution, Method
from glimpse.saliency.methods._common import score_of

#: ``ctx.generator`` salts of the three kinds of draw (each its own stream).
SALT_PICK, SALT_ALPHA, SALT_NOISE = 7, 8, 9


def expected_gradients(
    ctx,
    x: torch.Tensor,
    baselines: torch.Tensor,
    pick: torch.Tensor,
    alpha: torch.Tensor,
    noise: Callable[[slice], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """GradientSHAP for given draws (see the module docstring).

    Parameters
    ----------
    x : (B, C, H, W) inputs; sample ``j`` belongs to input ``j // n`` with ``n = len(pick) // B``.
    baselines : (K, C, H, W).
    pick : (B·n,) int64 baseline index per sample.
    alpha : (B·n,) path coefficient per sample.
    noise : ``noise(sl)`` gives the (m, C, H, W) additive noise ``ε`` of samples ``sl`` (already scaled by σ).

    Returns
    -------
    maps : (B, H, W) float64 on the CPU, ``Σ_channels φ``.
    totals : (B,) float64, ``Σ φ``.
    """
    b = x.shape[0]
    total = len(pick)
    if total % b:
        raise ValueError(f"pick: {total} samples do not split evenly over {b} inputs")
    n = total // b
    maps = torch.zeros((b,) + tuple(x.shape[-2:]), dtype=torch.float64)  # on the CPU: MPS has no float64
    chunks = ctx.chunks(total)
    for j, sl in enumerate(chunks):
        owner = torch.arange(sl.start, sl.stop) // n
        xt = x[owner.to(x.device)] + noise(sl).to(x.device, x.dtype)
        base = baselines[pick[sl].to(baselines.device)]
        a = alpha[sl].to(x.device, x.dtype).view(-1, 1, 1, 1)
        point = (a * xt + (1.0 - a) * base).requires_grad_(True)  # Captum's _scale_input
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(ctx.score(point)[:, 0].sum(), point)
        per_sample = ((xt - base) * grad).sum(1).detach().to("cpu", torch.float64)
        maps.index_add_(0, owner, per_sample)  # on the CPU, where index_add_ is deterministic
        ctx.progress((j + 1) / len(chunks))
    maps /= n
    return maps, maps.flatten(1).sum(1)


class GradientShap(Method):
    info = MethodInfo(
        name="gradient_shap",
        label="GradientSHAP",
        family="gradient",
        params={"samples": 25, "noise": 0.05, "baseline": "uniform", "baselines": 8},
        choices={"baseline": BASELINES},
        explanation="Integrated Gradients with random path points, random baselines and input noise, averaged:\n"
        "an estimate of Shapley values (attributions add up to S(x) − mean S(baseline) in expectation).",
        citation="Lundberg & Lee, A Unified Approach to Interpreting Model Predictions, NeurIPS 2017",
        slow=True,
        has_completeness=True,
        stochastic=True,
        units="ΔS per pixel",  # the attributions add up to S(x) − mean S(baseline) in expectation
    )

    def cost(self, params, where):
        # One forward+backward per sample; S(x) and S of each baseline (K drawn ones, or the one fixed
        # baseline) without gradients for the completeness gap.
        count = int(params["baselines"]) if params["baseline"] == "uniform" else 1
        return Cost(forward=1 + count, backward=int(params["samples"]))

    def attribute(self, ctx, x, params):
        n, count = int(params["samples"]), int(params["baselines"])
        if n < 1 or count < 1:
            raise ValueError("params: gradient_shap.samples and .baselines must be >= 1")
        noise_frac = float(params["noise"])
        if noise_frac < 0:
            raise ValueError(f"params: gradient_shap.noise must be >= 0, got {noise_frac}")
        kind = params["baseline"]
        baselines = ctx.baseline(kind, x[:1], count=count if kind == "uniform" else 1)
        lo, hi = ctx.input_range
        sigma = noise_frac * (hi - lo)
        total = x.shape[0] * n
        pick = torch.randint(0, baselines.shape[0], (total,), generator=ctx.generator(SALT_PICK))
        alpha = torch.rand(total, generator=ctx.generator(SALT_ALPHA), dtype=torch.float32)
        gen = ctx.generator(SALT_NOISE)
        shape = tuple(x.shape[1:])

        def noise(sl: slice) -> torch.Tensor:
            m = sl.stop - sl.start
            if sigma == 0:
                return torch.zeros((m,) + shape)
            return sigma * torch.randn((m,) + shape, generator=gen, dtype=torch.float32)

        maps, totals = expected_gradients(ctx, x, baselines, pick, alpha, noise)
        expected = (score_of(ctx, x) - score_of(ctx, baselines).mean()).to("cpu", torch.float64)
        return Attribution(maps.float().to(x.device), total=totals, expected=expected)
