"""Score-CAM (Wang et al., "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
Networks", CVPR Workshops 2020).

Each activation map A_k is upsampled to the input, min-max normalised to H_k ∈ [0, 1] and used as a mask:
``w_k = softmax(f(x ⊙ H_k))_c`` (probability of the target; p_a − p_b for a contrast), and
``map = ReLU(Σ_k w_k A_k)``. No gradients. The masked inputs run in batches. For interactive speed the
``channels`` strongest channels (by mean activation) are used; 0 uses all (as in the paper).

The weights follow the authors' code (github.com/haofanwang/Score-CAM, ``cam/scorecam.py``): each w_k is the
target's softmax probability on its own masked image, and a channel whose map is constant is skipped
(w_k = 0). They are not pytorch-grad-cam's weights (a softmax over the K channels' masked-image scores), nor
the paper's increase of confidence over a baseline image, ``f(x ⊙ H_k) − f(x_b)``. The sum is taken at the
layer's resolution and the result upsampled (the authors upsample each map first; bilinear upsampling is
linear, so only the ReLU's placement differs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from glimpse.saliency.base import Cost, MethodInfo
from glimpse.saliency.contract import Attribution, Method, capture, to_grid
from glimpse.saliency.methods.normgrad import minmax


class ScoreCAM(Method):
    info = MethodInfo(
        name="scorecam",
        label="Score-CAM",
        family="cam",
        params={"channels": 128},
        explanation="Uses each feature map of a layer as a soft mask on the image and weights it by the class\n"
        "probability of that masked image (the authors' code): gradient-free. channels = maps used (0 = all).",
        citation="Wang et al., Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks, "
        "CVPR Workshops 2020",
        slow=True,
        units="p(target) × activation",  # probabilities weighting the layer's activations
    )
    batchable = False

    def cost(self, params, where):
        # One forward for the activations, then one per masked image: the ``channels`` strongest channels,
        # or all of the layer's channels (0, or more than it has). Constant maps still run.
        k = _channels(params)
        total = where.layer_channels()
        return Cost(forward=1 + (k if 0 < k < total else total), backward=0)

    def attribute(self, ctx, x, params):
        with torch.no_grad():
            with capture(ctx.bundle, [ctx.layer]) as cap:
                ctx.score(x)
                a = to_grid(cap.get(ctx.layer), ctx.bundle)[0]  # (K, h, w)
            k = _channels(params)
            idx = torch.arange(a.shape[0], device=a.device)
            if 0 < k < a.shape[0]:
                idx = a.mean((1, 2)).topk(k).indices
            masks = F.interpolate(a[idx].unsqueeze(1), size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
            flat = masks.flatten(1)
            constant = flat.max(1).values == flat.min(1).values
            masks = minmax(masks)
            weights = torch.empty(len(idx), device=x.device)
            chunks = ctx.chunks(len(idx))
            for j, sl in enumerate(chunks):
                weights[sl] = ctx.prob_score(x * masks[sl].unsqueeze(1))[:, 0]
                ctx.progress((j + 1) / len(chunks))
            weights[constant] = 0.0  # the authors skip a constant map (it masks nothing in particular)
            cam = torch.relu((weights[:, None, None] * a[idx]).sum(0))
        return Attribution(cam.unsqueeze(0))


def _channels(params: dict) -> int:
    k = int(params["channels"])
    if k < 0:
        raise ValueError(f"params: scorecam.channels must be >= 0, got {k}")
    return k
