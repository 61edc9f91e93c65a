"""Eigen-CAM (Muhammad & Yeasin, "Eigen-CAM: Class Activation Map using Principal Components", IJCNN 2020).

The activations at a layer, reshaped to a (h·w) × K matrix and centred over locations, are projected on
their first right-singular vector: ``map = (A − mean) v₁``. No gradients and no class (the same map for
every target). The singular vector's sign is arbitrary; it is chosen so the map correlates positively
with the channel-summed activation.
"""

from __future__ import annotations

import torch

from glimpse.saliency.base import Cost, MethodInfo
from glimpse.saliency.contract import Attribution, Method, capture, to_grid


def first_component(a: torch.Tensor) -> torch.Tensor:
    """(K, h, w) -> (h, w): projection on the first principal component, sign fixed as documented."""
    k, h, w = a.shape
    m = a.detach().reshape(k, h * w).T.to("cpu", torch.float64)  # float64 on the CPU: MPS has no float64
    m = m - m.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(m, full_matrices=False)
    proj = m @ vh[0]
    ref = a.detach().sum(0).reshape(-1).to("cpu", torch.float64)
    if torch.dot(proj, ref - ref.mean()) < 0:
        proj = -proj
    return proj.reshape(h, w).to(a.device, torch.float32)


class EigenCAM(Method):
    info = MethodInfo(
        name="eigencam",
        label="Eigen-CAM",
        family="cam",
        explanation="The first principal component of a layer's feature maps: the dominant spatial pattern the\n"
        "layer sees. No gradients, and class-agnostic (the same map for every target).",
        citation="Muhammad & Yeasin, Eigen-CAM: Class Activation Map using Principal Components, IJCNN 2020",
        units="activation along the first principal component",
    )

    def cost(self, params, where):
        return Cost(forward=1, backward=0)  # the activations of one forward pass; no gradient

    def attribute(self, ctx, x, params):
        with torch.no_grad(), capture(ctx.bundle, [ctx.layer]) as cap:
            ctx.score(x)
            a = to_grid(cap.get(ctx.layer), ctx.bundle)
        return Attribution(torch.stack([first_component(ai) for ai in a]))
