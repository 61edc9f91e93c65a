"""Chefer, Gur & Wolf's generic relevance rule ("Generic Attention-model Explainability for Interpreting Bi-Modal
and Encoder-Decoder Transformers", ICCV 2021).

Each block's attention A weighted by the gradient of the target score, its positive part averaged over heads,
``Ā = E_h[(∇A ⊙ A)⁺]``, and rolled out from the first block: ``R ← R + Ā R`` from ``R = I``; the map is the class
token's row over the patches. Their CVPR 2021 method (``chefer_lrp``) is this class with one hook changed: what
weights the gradient (:meth:`Chefer.weights`).
"""

from __future__ import annotations

import torch

from glimpse.saliency.contract import Attribution
from glimpse.saliency.methods.transformer import TransformerMethod, class_row, relevance_rollout, vit_info


class Chefer(TransformerMethod):
    info = vit_info(
        "chefer",
        "Chefer generic relevance",
        explanation="Their generic 2021 rule: attention weighted by the class score's gradient, its positive part\n"
        "averaged over heads, propagated through the blocks (R ← R + Ā·R): where the class token's evidence comes from.",
        citation="Chefer, Gur & Wolf, Generic Attention-model Explainability for Interpreting Bi-Modal and "
        "Encoder-Decoder Transformers, ICCV 2021",
        units="attention relevance",
    )

    grad = True

    def weights(self, ctx, cap, start: int) -> list[torch.Tensor]:
        """What multiplies each block's attention gradient (blocks ``start`` on), (B, heads, T, T): the
        attention itself."""
        return [a.detach().float() for a in cap.attentions[start:]]

    def attribute(self, ctx, x, params):
        cap, score, attentions, start = self._attentions(ctx, x, params)
        grads = torch.autograd.grad(score.sum(), attentions[start:])
        weights = self.weights(ctx, cap, start)
        cams = [(g.detach().float() * w).clamp(min=0).mean(1) for g, w in zip(grads, weights)]
        return Attribution(class_row(relevance_rollout(cams), ctx.bundle.token_grid))
