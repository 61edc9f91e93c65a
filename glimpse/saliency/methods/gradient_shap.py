"""GradientSHAP (Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017;
Captum's GradientShap): expected gradients

``φ_i = E_{x'~B, α~U(0,1), ε~N(0,σ²)} [(x_i − x'_i) · ∂S(x' + α(x + ε − x'))/∂x_i]``,

one Monte-Carlo sample per (baseline, α, ε) draw, all samples in one batch. In expectation
``Σ φ = S(x) − E[S(x')]``; the completeness gap shown is that of the finite sample.
"""

from __future__ import annotations

import torch
from captum.attr import GradientShap as CaptumGradientShap

from glimpse.saliency.base import Attribution, Method, MethodInfo
from glimpse.saliency.methods._common import quiet_captum, score_of


class GradientShap(Method):
    info = MethodInfo(
        name="gradient_shap",
        label="GradientSHAP",
        family="gradient",
        needs_layer=False,
        params={"samples": 25, "noise": 0.05, "baseline": "uniform", "baselines": 8},
        choices={"baseline": ["black", "blurred", "uniform"]},
        explanation="Integrated Gradients with random path points, random baselines and input noise, averaged:\n"
        "an estimate of Shapley values (attributions add up to S(x) − mean S(baseline) in expectation).",
        citation="Lundberg & Lee, A Unified Approach to Interpreting Model Predictions, NeurIPS 2017",
        slow=True,
        has_completeness=True,
    )

    def attribute(self, ctx, x, params):
        if params["samples"] < 1 or params["baselines"] < 1:
            raise ValueError("params: gradient_shap.samples and .baselines must be >= 1")
        count = params["baselines"] if params["baseline"] == "uniform" else 1
        baselines = ctx.baseline(params["baseline"], x[:1], count=count)
        lo, hi = ctx.input_range
        # Captum draws from the global RNG; seed it from ctx.seed and restore it afterwards.
        state = torch.random.get_rng_state()
        torch.manual_seed(int(ctx.seed) + 7)
        try:
            with quiet_captum():
                attr = CaptumGradientShap(ctx.score, multiply_by_inputs=True).attribute(
                    x,
                    baselines=baselines,
                    n_samples=params["samples"],
                    stdevs=float(params["noise"]) * (hi - lo),
                    target=0,
                )
        finally:
            torch.random.set_rng_state(state)
        attr = attr.detach()
        expected = score_of(ctx, x) - score_of(ctx, baselines).mean()
        return Attribution(attr.sum(1), total=attr.flatten(1).sum(1), expected=expected)
