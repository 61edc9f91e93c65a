"""RISE (Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box Models",
BMVC 2018).

N random masks: a binary s×s grid (each cell on with probability p), upsampled bilinearly to
(s+1)·cell and randomly shifted by up to one cell, then cropped to the input. The map is
``M = 1/(N·p) Σ_i f(x ⊙ M_i + black ⊙ (1 − M_i)) · M_i`` with ``f`` the softmax probability of the target
(p_a − p_b for a contrast). Masked images run in batches; masks are seeded.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from glimpse.saliency.base import Cost, MethodInfo
from glimpse.saliency.contract import Attribution, Method


def rise_masks(n: int, size: tuple[int, int], grid: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """(n, H, W) float masks in [0, 1] as in the paper."""
    h, w = size
    cell_h, cell_w = math.ceil(h / grid), math.ceil(w / grid)
    up_h, up_w = (grid + 1) * cell_h, (grid + 1) * cell_w
    cells = (torch.rand((n, 1, grid, grid), generator=generator) < p).float()
    up = F.interpolate(cells, size=(up_h, up_w), mode="bilinear", align_corners=False)[:, 0]
    dy = torch.randint(0, cell_h, (n,), generator=generator)
    dx = torch.randint(0, cell_w, (n,), generator=generator)
    return torch.stack([up[i, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


class Rise(Method):
    info = MethodInfo(
        name="rise",
        label="RISE",
        family="perturbation",
        params={"masks": 500, "grid": 7, "p": 0.5},
        explanation="Shows the model many randomly masked copies of the image and averages the masks weighted by\n"
        "the class probability each copy gets: black-box, smooth maps (masks × 1 batched forward).",
        citation="Petsiuk, Das & Saenko, RISE: Randomized Input Sampling for Explanation of Black-box Models, "
        "BMVC 2018",
        slow=True,
        stochastic=True,
        units="p(target) with the pixel kept",  # M ≈ E[f(x ⊙ mask) | pixel kept], f the target's probability
    )
    batchable = False

    def cost(self, params, where):
        return Cost(forward=int(params["masks"]), backward=0)  # one forward per masked image

    def attribute(self, ctx, x, params):
        n, grid, p = int(params["masks"]), int(params["grid"]), float(params["p"])
        if n < 1 or grid < 1 or not 0.0 < p <= 1.0:
            raise ValueError("params: rise needs masks >= 1, grid >= 1 and 0 < p <= 1")
        masks = rise_masks(n, tuple(x.shape[-2:]), grid, p, ctx.generator(salt=5)).to(x.device, x.dtype)
        black = ctx.black(x)
        total = torch.zeros(x.shape[-2:], dtype=torch.float64)  # on the CPU: MPS has no float64
        chunks = ctx.chunks(n)
        with torch.no_grad():
            for j, sl in enumerate(chunks):
                m = masks[sl].unsqueeze(1)
                s = ctx.prob_score(x * m + black * (1 - m))[:, 0]
                total += (s[:, None, None] * masks[sl]).sum(0).to("cpu", torch.float64)
                ctx.progress((j + 1) / len(chunks))
        return Attribution((total / (n * p)).float().unsqueeze(0))
