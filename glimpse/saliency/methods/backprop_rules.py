"""Modified-backward rules through rectifiers (Captum's GuidedBackprop and Deconvolution).

Guided Backprop (Springenberg et al. 2015) passes a gradient back through a ReLU only where both the
forward input and the incoming gradient are positive; DeconvNet (Zeiler & Fergus 2014) only where the
incoming gradient is positive. Captum hooks every ``nn.ReLU`` module: the embedded EfficientNet-Lite0 has
one :class:`~models.efficientnet_lite.SiteReLU6` (an ``nn.ReLU`` subclass) per call site, so each
rectifier is hooked exactly once (with a shared module the rule silently degrades to the plain gradient).
"""

from __future__ import annotations

from captum.attr import Deconvolution
from captum.attr import GuidedBackprop as CaptumGuidedBackprop

from glimpse.saliency.base import Cost, MethodInfo
from glimpse.saliency.contract import Attribution, Method
from glimpse.saliency.methods._common import quiet_captum


class GuidedBackprop(Method):
    info = MethodInfo(
        name="guided_backprop",
        label="Guided Backprop",
        family="gradient",
        explanation="Backpropagates only positive gradients through positive activations (both masks at every\n"
        "ReLU): crisp edges, but largely class-insensitive (it fails the randomisation sanity check).",
        citation="Springenberg et al., Striving for Simplicity: The All Convolutional Net, ICLR Workshop 2015",
        # Not ∂S/∂x: the rule drops signals at every ReLU, so the values are on a scale of their own.
        units="modified ∂S/∂x (Guided Backprop rule)",
    )
    captum_class = CaptumGuidedBackprop

    def cost(self, params, where):
        return Cost(forward=0, backward=1)  # one forward and one (modified) backward

    def attribute(self, ctx, x, params):
        with quiet_captum():
            attr = self.captum_class(ctx.score).attribute(x, target=0)
        return Attribution(attr.detach().sum(1))


class DeconvNet(GuidedBackprop):
    info = MethodInfo(
        name="deconvnet",
        label="DeconvNet",
        family="gradient",
        explanation="Backpropagates through each ReLU as if it were applied to the gradient (positive gradients\n"
        "pass, whatever the forward activation): the 'deconvolution' visualisation of Zeiler & Fergus.",
        citation="Zeiler & Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014",
        units="modified ∂S/∂x (DeconvNet rule)",
    )
    captum_class = Deconvolution
