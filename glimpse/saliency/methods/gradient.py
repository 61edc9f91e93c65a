"""Input-gradient maps read from the shared pass: gradient, |gradient|, Input×Gradient, SmoothGrad."""

from __future__ import annotations

from glimpse.saliency.base import MethodInfo, tunnel_units
from glimpse.saliency.contract import Method


class Gradient(Method):
    """Vanilla gradient (Simonyan, Vedaldi & Zisserman 2014): ``M(u) = Σ_channels ∂S_c/∂x(u)`` (signed)."""

    info = MethodInfo(
        name="gradient",
        label="Gradient",
        family="gradient",
        explanation="How much the class score changes when each pixel is nudged: ∂S_c/∂x,\n"
        "summed over the colour channels (signed; red = raising the pixel raises the score).",
        citation="Simonyan, Vedaldi & Zisserman, Deep Inside Convolutional Networks, ICLR Workshop 2014",
        units="∂S/∂x",
    )
    shared = True

    def needs_input_grad(self, params):
        return True

    def from_pass(self, ctx, p, params):
        return p.dx.sum(1)


class GradientAbs(Gradient):
    """Saliency map of Simonyan et al. (2014): ``M(u) = max_channels |∂S_c/∂x(u)|``."""

    info = MethodInfo(
        name="gradient_abs",
        label="|Gradient|",
        family="gradient",
        explanation="The original saliency map: the largest absolute gradient over the colour channels,\n"
        "max_c |∂S_c/∂x_c|. Shows where the score is sensitive, not in which direction.",
        citation="Simonyan, Vedaldi & Zisserman, Deep Inside Convolutional Networks, ICLR Workshop 2014",
        # The same derivative as the plain gradient (score per model-input unit, at each pixel), taken as the
        # largest magnitude over the channels instead of their sum: one scale shows both honestly.
        units="∂S/∂x",
    )

    def from_pass(self, ctx, p, params):
        return p.dx.abs().amax(1)


class InputXGradient(Gradient):
    """Input×Gradient (Shrikumar et al. 2016): ``M(u) = Σ_channels x(u) · ∂S_c/∂x(u)`` in model-input units."""

    info = MethodInfo(
        name="input_x_gradient",
        label="Input × Gradient",
        family="gradient",
        explanation="The gradient times the (normalised) input, x ⊙ ∂S_c/∂x, summed over channels:\n"
        "a first-order estimate of each pixel's contribution relative to a zero input.",
        citation="Shrikumar et al., Not Just a Black Box: Learning Important Features Through Propagating "
        "Activation Differences, arXiv 2016",
        # First-order share of S(x) − S(0) per pixel (0: the zero model input), like the path attributions.
        units="ΔS per pixel",
    )

    def from_pass(self, ctx, p, params):
        return (p.x * p.dx).sum(1)


class SmoothGrad(Gradient):
    """SmoothGrad (Smilkov et al. 2017): ``M(u) = 1/n Σ_i Σ_ch ∂S_c/∂x(x + ε_i)(u)``, ε_i ~ N(0, σ²),
    σ = noise · input range. The noise tunnel over ``gradient``, as its own registry entry."""

    info = MethodInfo(
        name="smoothgrad",
        label="SmoothGrad",
        family="gradient",
        params={"samples": 25, "noise": 0.15, "kind": "smoothgrad"},
        choices={"kind": ["smoothgrad", "smoothgrad_sq", "vargrad"]},
        explanation="The gradient averaged over noisy copies of the image (x + Gaussian noise, σ a fraction\n"
        "of the input range): sharper, less speckled maps. _sq averages squares, vargrad takes the variance.",
        citation="Smilkov et al., SmoothGrad: removing noise by adding noise, ICML Workshop 2017",
        slow=True,
        stochastic=True,
        units="∂S/∂x",
    )

    def units(self, params):
        return tunnel_units(self.info.units, params["kind"])  # _sq and vargrad square the gradient's units

    def own_noise_tunnel(self, params):
        return {"kind": params["kind"], "samples": params["samples"], "noise": params["noise"]}
