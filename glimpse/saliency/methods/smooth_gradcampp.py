"""Smooth Grad-CAM++ (Omeiza et al., "Smooth Grad-CAM++: An Enhanced Inference Level Visualization
Technique for Deep Convolutional Neural Network Models", arXiv 2019), TorchCAM's variant.

For n noisy copies x + N(0, σ²) (σ = noise · input range), averaged over the copies: activations Ā,
gradient ḡ, and the powers D̄² = mean g², D̄³ = mean g³. Then
``α = D̄² / (2 D̄² + Σ_ab Ā_ab D̄³)`` (0 where the denominator is 0), ``w_k = Σ_ij α_kij ReLU(ḡ_kij)``,
``map = ReLU(Σ_k w_k Ā_k)``. The paper's D̄¹ in the numerator is a typo (per TorchCAM); all copies run
as one batched pass.
"""

from __future__ import annotations

import torch

from glimpse.saliency.base import Cost, MethodInfo
from glimpse.saliency.contract import Attribution, Method, run_pass
from glimpse.saliency.methods.cam import GradCAMpp


class SmoothGradCAMpp(Method):
    info = MethodInfo(
        name="smooth_gradcampp",
        label="Smooth Grad-CAM++",
        family="cam",
        params={"samples": 4, "noise": 0.15},
        explanation="Grad-CAM++ with its gradient powers averaged over a few noisy copies of the image:\n"
        "α = mean g² / (2 mean g² + ΣA · mean g³); smoother, more complete object coverage.",
        citation="Omeiza et al., Smooth Grad-CAM++: An Enhanced Inference Level Visualization Technique for "
        "Deep Convolutional Neural Network Models, arXiv 2019",
        stochastic=True,
        units="Smooth Grad-CAM++ weighted activation",
        assumes_nonnegative_activations=True,  # Grad-CAM++'s α (see cam.GradCAMpp)
    )
    batchable = False

    def cost(self, params, where):
        return Cost(forward=0, backward=int(params["samples"]))  # one forward+backward per noisy copy

    def attribute(self, ctx, x, params):
        n = int(params["samples"])
        if n < 1:
            raise ValueError(f"params: smooth_gradcampp.samples must be >= 1, got {n}")
        lo, hi = ctx.input_range
        sigma = float(params["noise"]) * (hi - lo)
        noise = torch.randn((n,) + tuple(x.shape[1:]), generator=ctx.generator(salt=3)).to(x.device, x.dtype)
        xs = x + sigma * noise
        a_sum = g_sum = g2 = g3 = 0
        for sl in ctx.chunks(n):
            p = run_pass(ctx, xs[sl], [ctx.layer], need_input_grad=False)
            a, g = p.acts[ctx.layer], p.grads[ctx.layer]
            a_sum = a_sum + a.sum(0, keepdim=True)
            g_sum = g_sum + g.sum(0, keepdim=True)
            g2 = g2 + (g * g).sum(0, keepdim=True)
            g3 = g3 + (g * g * g).sum(0, keepdim=True)
        a, g, g2, g3 = a_sum / n, g_sum / n, g2 / n, g3 / n
        alpha = GradCAMpp.alpha(a, g2, g3)
        w = (alpha * torch.relu(g)).sum((2, 3))
        return Attribution(torch.relu((w[:, :, None, None] * a).sum(1)))
