"""Integrated Gradients (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017).

``IG_i(x) = (x_i − x'_i) · ∫₀¹ ∂S(x' + α(x − x'))/∂x_i dα``, approximated by Captum with Gauss-Legendre
quadrature (exact for polynomials of degree 2·steps − 1), all path points batched on the device.
Completeness: ``Σ_i IG_i = S(x) − S(x')``.
"""

from __future__ import annotations

from captum.attr import IntegratedGradients as CaptumIG

from glimpse.saliency.base import Attribution, Method, MethodInfo
from glimpse.saliency.methods._common import quiet_captum, score_of

BASELINES = ["black", "blurred", "uniform"]


class IntegratedGradients(Method):
    info = MethodInfo(
        name="integrated_gradients",
        label="Integrated Gradients",
        family="gradient",
        needs_layer=False,
        params={"steps": 50, "baseline": "black", "rule": "gausslegendre"},
        choices={
            "baseline": BASELINES,
            "rule": ["gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left", "riemann_right"],
        },
        explanation="Averages the gradient along a straight path from a baseline (black, blurred or noise) to the\n"
        "image and multiplies by (x − baseline); the attributions add up to S(x) − S(baseline).",
        citation="Sundararajan, Taly & Yan, Axiomatic Attribution for Deep Networks, ICML 2017",
        slow=True,
        has_completeness=True,
    )

    def attribute(self, ctx, x, params):
        if params["steps"] < 1:
            raise ValueError(f"params: integrated_gradients.steps must be >= 1, got {params['steps']}")
        baseline = ctx.baseline(params["baseline"], x)
        ig = CaptumIG(ctx.score, multiply_by_inputs=True)
        with quiet_captum():
            attr = ig.attribute(
                x,
                baselines=baseline,
                target=0,
                n_steps=params["steps"],
                method=params["rule"],
                internal_batch_size=ctx.batch_size,
            )
        s = score_of(ctx, x)
        s0 = score_of(ctx, baseline)
        return Attribution(attr.detach().sum(1), total=attr.detach().flatten(1).sum(1), expected=s - s0)
