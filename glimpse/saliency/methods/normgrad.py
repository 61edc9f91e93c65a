"""NormGrad (Rebuffi et al., "There and Back Again: Revisiting Backpropagation Saliency Methods", CVPR 2020).

At a layer with activation a_u ∈ R^C and gradient g_u ∈ R^C at location u:
plain ``N(u) = ‖a_u‖₂ · ‖g_u‖₂`` (the Frobenius norm of the outer product a_u g_uᵀ), selective
``N(u) = ‖ReLU(a_u ⊙ g_u)‖₂``. The multi-layer map upsamples each layer's plain map to the input,
min-max normalises it to [0, 1] and multiplies the maps element-wise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from glimpse.saliency.base import MethodInfo
from glimpse.saliency.contract import Method

CITATION = "Rebuffi et al., There and Back Again: Revisiting Backpropagation Saliency Methods, CVPR 2020"


def _info(name: str, label: str, explanation: str, units: str, **kw) -> MethodInfo:
    """A NormGrad variant: a layer method (the CAM family) of Rebuffi et al."""
    return MethodInfo(
        name=name, label=label, family="cam", explanation=explanation, citation=CITATION, units=units, **kw
    )


class _NormGrad(Method):
    """A NormGrad variant: read from the shared pass's activations and gradients."""

    shared = True


class NormGrad(_NormGrad):
    """Plain NormGrad: ``‖a_u‖₂ · ‖g_u‖₂`` at the chosen layer."""

    info = _info(
        "normgrad",
        "NormGrad",
        "At each location of a layer, the norm of the activation vector times the norm of its\n"
        "gradient, ‖a_u‖·‖g_u‖ (the norm of the weight gradient a 1×1 conv there would receive).",
        # A norm (of a weight gradient), not a score contribution like Grad-CAM's Σ_k w_k A_k: its own scale.
        "‖A‖·‖∂S/∂A‖ per layer cell",
    )

    def from_pass(self, ctx, p, params):
        return p.acts[ctx.layer].norm(dim=1) * p.grads[ctx.layer].norm(dim=1)


class NormGradSelective(_NormGrad):
    """Selective NormGrad: ``‖ReLU(a_u ⊙ g_u)‖₂`` over channels."""

    info = _info(
        "normgrad_selective",
        "NormGrad (selective)",
        "NormGrad keeping only channels whose activation and gradient agree in sign:\n"
        "‖ReLU(a_u ⊙ g_u)‖ at each location — more class-selective than the plain form.",
        "‖ReLU(A ⊙ ∂S/∂A)‖ per layer cell",
    )

    def from_pass(self, ctx, p, params):
        return torch.relu(p.acts[ctx.layer] * p.grads[ctx.layer]).norm(dim=1)


def minmax(m: torch.Tensor) -> torch.Tensor:
    """Per-map min-max normalisation of (B, H, W) to [0, 1] (constant maps become 0)."""
    flat = m.flatten(1)
    lo = flat.min(1).values[:, None, None]
    hi = flat.max(1).values[:, None, None]
    span = hi - lo
    return torch.where(span > 0, (m - lo) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(m))


class NormGradMultilayer(_NormGrad):
    """Multi-layer NormGrad: ``Π_l minmax(upsample(‖a_u^l‖ ‖g_u^l‖))`` over several layers, one pass."""

    info = _info(
        "normgrad_multilayer",
        "NormGrad (multi-layer)",
        "Plain NormGrad at several depths, each upsampled and scaled to [0, 1], multiplied together:\n"
        "deep layers say what, shallow layers say where. Layers: comma-separated; empty = the suggested ones.",
        "product of [0, 1]-scaled NormGrad maps",
        params={"layers": ""},
    )

    def layers(self, ctx, params):
        given = [s.strip() for s in str(params.get("layers", "")).split(",") if s.strip()]
        layers = given or list(ctx.bundle.target_layers[:4])
        if not layers:
            raise ValueError("params: normgrad_multilayer.layers is empty and the model suggests no layers")
        for layer in layers:
            ctx.bundle.module(layer)
        return layers

    def from_pass(self, ctx, p, params):
        size = tuple(p.x.shape[-2:])
        out = None
        for layer in self.layers(ctx, params):
            m = p.acts[layer].norm(dim=1) * p.grads[layer].norm(dim=1)
            m = F.interpolate(m.unsqueeze(1), size=size, mode="bilinear", align_corners=False)[:, 0]
            m = minmax(m)
            out = m if out is None else out * m
        return out
