"""DeepLIFT, rescale rule (Shrikumar, Greenside & Kundaje, "Learning Important Features Through
Propagating Activation Differences", ICML 2017), via Captum.

Each nonlinearity y = f(x) passes back the multiplier ``Δy/Δx = (f(x) − f(x')) / (x − x')`` instead of its
gradient, so attributions satisfy summation-to-delta: ``Σ_i attr_i = S(x) − S(x')`` (baseline x' = black).
"""

from __future__ import annotations

from captum.attr import DeepLift as CaptumDeepLift
from captum.attr._core import deep_lift as _captum_deep_lift

from glimpse.saliency.base import Cost, MethodInfo
from glimpse.saliency.contract import BASELINES, Attribution, Method, ScoreModel
from glimpse.saliency.methods._common import quiet_captum, score_of
from glimpse.saliency.methods.sites import per_site


def register_subclass_rules(model) -> None:
    """Give subclasses of Captum's supported nonlinearities their parent's DeepLIFT rule.

    Captum looks nonlinearities up by exact type (``type(module) in SUPPORTED_NON_LINEAR``), so a subclass
    such as the embedded model's per-site ``SiteReLU6(nn.ReLU)`` would get no rule: DeepLIFT would silently
    return Input×Gradient and lose completeness. A subclass computes the same kind of function as its parent
    (ReLU6 is element-wise like ReLU), so the parent's rule — for ReLU, the rescale multiplier Δy/Δx — is
    exact for it. Registering is additive and idempotent, so it is safe under concurrent explanations.
    """
    rules = _captum_deep_lift.SUPPORTED_NON_LINEAR
    for module in model.modules():
        kind = type(module)
        if kind in rules:
            continue
        parent = next((base for base in kind.__mro__[1:] if base in rules), None)
        if parent is not None:
            rules.setdefault(kind, rules[parent])


class DeepLift(Method):
    info = MethodInfo(
        name="deeplift",
        label="DeepLIFT",
        family="gradient",
        params={"baseline": "black"},
        choices={"baseline": BASELINES},
        explanation="Compares the image with a baseline and passes back, at every nonlinearity, the ratio of\n"
        "output change to input change (rescale rule); attributions add up to S(x) − S(baseline).",
        citation="Shrikumar, Greenside & Kundaje, Learning Important Features Through Propagating Activation "
        "Differences, ICML 2017",
        has_completeness=True,
        stochastic=True,
        units="ΔS per pixel",  # summation-to-delta: the attributions add up to S(x) − S(baseline)
    )

    def cost(self, params, where):
        # Captum runs the image and its baseline as one batch of two (forward and backward); S(x) and
        # S(baseline) run once more, without gradients, for the completeness gap.
        return Cost(forward=2, backward=2)

    def uses_seed(self, params):
        return params["baseline"] == "uniform"  # the noise baseline is drawn; black and blurred are fixed

    def attribute(self, ctx, x, params):
        # Captum keeps one input and output per nonlinearity module: a network calling one ReLU at several sites
        # (torchvision's ResNet blocks) runs as a copy with a ReLU per site (methods/sites.py)
        score = ScoreModel(per_site(ctx.score.model), ctx.target, probs=ctx.score.probs)
        register_subclass_rules(score)
        baseline = ctx.baseline(params["baseline"], x)
        with quiet_captum():
            attr = CaptumDeepLift(score, multiply_by_inputs=True).attribute(x, baselines=baseline, target=0)
        attr = attr.detach()
        return Attribution(
            attr.sum(1), total=attr.flatten(1).sum(1), expected=score_of(ctx, x) - score_of(ctx, baseline)
        )
