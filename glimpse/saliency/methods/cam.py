"""Gradient CAMs at one layer, read from the shared pass (activations A (B, K, h, w), gradients g = ∂S_c/∂A).

Each class overrides one step, as in pytorch-grad-cam: most define channel weights w_k and return
``ReLU(Σ_k w_k A_k)``; HiResCAM and Layer-CAM define element-wise weights w of the gradient's shape and return
``ReLU(Σ_k w_k ⊙ A_k)``. Maps are at the layer's resolution;
the engine upsamples them bilinearly to the input.
"""

from __future__ import annotations

import torch

from glimpse.saliency.base import MethodInfo
from glimpse.saliency.contract import Method

EPS = 1e-7

#: Grad-CAM, HiResCAM, XGrad-CAM and Layer-CAM all map a layer cell u to ReLU(Σ_k w_k A_k(u)) with a weight
#: w in units of ∂S/∂A (the gradient there, its spatial mean, its positive part, or its A-weighted mean): a
#: first-order estimate of the score that the cell's activations carry, in units of S. They differ in which
#: gradient they trust, not in what they measure, so they may share a colour scale. Grad-CAM++ is not among
#: them: its α = g² / (2g² + ΣA·g³) adds terms of different units, so its weights have a scale of their own.
SCORE_PER_CELL = "ΔS per layer cell"


def _info(name, label, explanation, citation, **kw) -> MethodInfo:
    return MethodInfo(
        name=name,
        label=label,
        family="cam",
        explanation=explanation,
        citation=citation,
        **kw,
    )


class _WeightedCAM(Method):
    """``map = ReLU(Σ_k w_k A_k)`` with ``w = weights(A, g)`` of shape (B, K)."""

    shared = True

    def weights(self, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def from_pass(self, ctx, p, params):
        a, g = p.acts[ctx.layer], p.grads[ctx.layer]
        w = self.weights(a, g)
        return torch.relu((w[:, :, None, None] * a).sum(1))


class GradCAM(_WeightedCAM):
    """Grad-CAM (Selvaraju et al. 2017): ``w_k = mean_ij g_kij``; ``map = ReLU(Σ_k w_k A_k)``."""

    info = _info(
        "gradcam",
        "Grad-CAM",
        "Weights each feature map of a layer by its average gradient, w_k = mean(∂S_c/∂A_k),\n"
        "and keeps the positive part of Σ_k w_k A_k: coarse, class-discriminative regions.",
        "Selvaraju et al., Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization, ICCV 2017",
        units=SCORE_PER_CELL,
    )

    def weights(self, a, g):
        return g.mean((2, 3))


class XGradCAM(_WeightedCAM):
    """XGrad-CAM (Fu et al. 2020): ``w_k = Σ_ij g_kij A_kij / (Σ_ij A_kij + eps)``."""

    info = _info(
        "xgradcam",
        "XGrad-CAM",
        "Grad-CAM with activation-weighted gradients, w_k = Σ g_k A_k / Σ A_k, derived from the\n"
        "sensitivity and conservation axioms; map = ReLU(Σ_k w_k A_k).",
        "Fu et al., Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of CNNs, BMVC 2020",
        units=SCORE_PER_CELL,
        # w_k averages the gradient with weights A / ΣA, a distribution only for A ≥ 0; with signed activations
        # ΣA can vanish and w_k blows up or flips sign.
        assumes_nonnegative_activations=True,
    )

    def weights(self, a, g):
        return (g * a).sum((2, 3)) / (a.sum((2, 3)) + EPS)


class GradCAMpp(_WeightedCAM):
    """Grad-CAM++ (Chattopadhay et al. 2018):
    ``α_kij = g² / (2 g² + Σ_ab A_kab g³)`` (α = 0 where the denominator is 0),
    ``w_k = Σ_ij α_kij ReLU(g_kij)``, ``map = ReLU(Σ_k w_k A_k)`` (the paper's exp(S) factor cancels)."""

    info = _info(
        "gradcampp",
        "Grad-CAM++",
        "Grad-CAM whose channel weights sum only positive gradients, each scaled by α = g² / (2g² + ΣA·g³):\n"
        "better when several instances of the class are present.",
        "Chattopadhay et al., Grad-CAM++: Generalized Gradient-based Visual Explanations for Deep CNNs, WACV 2018",
        units="Grad-CAM++ weighted activation",
        # α is derived for post-ReLU activations; where Σ_ab A_kab < 0 its denominator can vanish or change sign.
        assumes_nonnegative_activations=True,
    )

    @staticmethod
    def alpha(a: torch.Tensor, g2: torch.Tensor, g3: torch.Tensor) -> torch.Tensor:
        denom = 2 * g2 + a.sum((2, 3), keepdim=True) * g3
        safe = torch.where(denom != 0, denom, torch.ones_like(denom))
        return torch.where(denom != 0, g2 / safe, torch.zeros_like(denom))

    def weights(self, a, g):
        alpha = self.alpha(a, g * g, g * g * g)
        return (alpha * torch.relu(g)).sum((2, 3))


class _ElementwiseCAM(Method):
    """``map = ReLU(Σ_k w_k ⊙ A_k)`` with an element-wise weight ``w = weights(g)`` of the gradient's shape."""

    shared = True

    def weights(self, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def from_pass(self, ctx, p, params):
        return torch.relu((self.weights(p.grads[ctx.layer]) * p.acts[ctx.layer]).sum(1))


class HiResCAM(_ElementwiseCAM):
    """HiResCAM (Draelos & Carin 2020): ``map = ReLU(Σ_k g_k ⊙ A_k)`` (element-wise, no averaging)."""

    info = _info(
        "hirescam",
        "HiResCAM",
        "Multiplies each feature map by its gradient element-wise before summing, ReLU(Σ_k g_k ⊙ A_k):\n"
        "provably shows the locations the score used (for models ending in a linear layer).",
        "Draelos & Carin, Use HiResCAM instead of Grad-CAM for faithful explanations of CNNs, arXiv 2020",
        units=SCORE_PER_CELL,
    )

    def weights(self, g):
        return g


class LayerCAM(_ElementwiseCAM):
    """Layer-CAM (Jiang et al. 2021): ``map = ReLU(Σ_k ReLU(g_k) ⊙ A_k)``."""

    info = _info(
        "layercam",
        "Layer-CAM",
        "Weights every activation by its own positive gradient, ReLU(Σ_k ReLU(g_k) ⊙ A_k):\n"
        "works at shallow layers too, giving finer maps.",
        "Jiang et al., LayerCAM: Exploring Hierarchical Class Activation Maps for Localization, IEEE TIP 2021",
        units=SCORE_PER_CELL,
    )

    def weights(self, g):
        return torch.relu(g)
