"""Attention rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020).

Per block the heads' fused attention Ā (mean by default), the residual added as ``0.5 Ā + 0.5 I`` and the rows
renormalised, multiplied from the first block up: ``R = Â_L ⋯ Â_1``; the map is the class token's row over the
patches. Class-agnostic (the target does not enter).
"""

from __future__ import annotations

import torch

from glimpse.saliency.contract import Attribution
from glimpse.saliency.methods.transformer import HEAD_FUSIONS, TransformerMethod, class_row, fuse_heads, vit_info


class AttentionRollout(TransformerMethod):
    info = vit_info(
        "rollout",
        "Attention rollout",
        params={"head_fusion": "mean"},
        choices={"head_fusion": HEAD_FUSIONS},
        explanation="How much each patch flows into the class token through every block's attention: the heads'\n"
        "mean, the residual added (½A + ½I), multiplied from the first block up. The same map for every class.",
        citation="Abnar & Zuidema, Quantifying Attention Flow in Transformers, ACL 2020",
        units="attention flow",
    )

    def attribute(self, ctx, x, params):
        cap, _, attentions, start = self._attentions(ctx, x, params)
        eye = torch.eye(cap.tokens, device=x.device)
        r = eye.expand(x.shape[0], -1, -1)
        for a in attentions[start:]:
            a = 0.5 * fuse_heads(a.detach().float(), params["head_fusion"]) + 0.5 * eye
            a = a / a.sum(-1, keepdim=True)
            r = a @ r
        return Attribution(class_row(r, ctx.bundle.token_grid))
