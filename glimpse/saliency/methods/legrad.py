"""LeGrad (Bousselham et al., "LeGrad: An Explainability Method for Vision Transformers via Feature Formation
Sensitivity", ICCV 2025).

Each block's tokens go through the model's own final norm, pooling and head (:func:`vit_parts.logit_lens`: the
score that block would give); the positive part of that score's gradient with respect to the block's attention,
averaged over heads and query tokens, summed over blocks and min-max normalised (the reference code's
``compute_legrad``).
"""

from __future__ import annotations

import torch

from glimpse.saliency.contract import Attribution
from glimpse.saliency.methods.transformer import TransformerMethod, vit_info
from glimpse.saliency.methods.vit_parts import logit_lens


class LeGrad(TransformerMethod):
    info = vit_info(
        "legrad",
        "LeGrad",
        explanation="Each block's tokens read by the model's own head (the score that block would give); how that\n"
        "score's gradient flows through the block's attention, averaged and summed over blocks, min-max scaled.",
        citation="Bousselham et al., LeGrad: An Explainability Method for Vision Transformers via Feature "
        "Formation Sensitivity, ICCV 2025",
        units="LeGrad (min-max)",
    )

    grad = True

    def attribute(self, ctx, x, params):
        lens = logit_lens(ctx.bundle)
        cap, score, attentions, start = self._attentions(ctx, x, params)
        index, contrast = int(ctx.target.index), ctx.target.contrast
        last = _lens_score(lens, cap.hidden[-1], index, contrast)
        if not torch.allclose(last.detach(), score.detach(), rtol=1e-3, atol=1e-3):
            raise ValueError(
                "method: legrad cannot read this model's blocks with its head (the last block's tokens through "
                f"the head give {float(last[0]):.4g}, the model {float(score[0]):.4g}); its pooling is not known"
            )
        grid = ctx.bundle.token_grid
        total = torch.zeros(x.shape[0], grid.height, grid.width, device=x.device)
        blocks = range(start, len(attentions))
        for n, i in enumerate(blocks):
            # the last block's lens score is the model's own (checked above): its gradient is the pass the cost
            # counts; the earlier blocks' are partial backward passes through fewer blocks
            s = score if i == len(attentions) - 1 else _lens_score(lens, cap.hidden[i], index, contrast)
            (g,) = torch.autograd.grad(s.sum(), attentions[i], retain_graph=n + 1 < len(blocks))
            relevance = g.detach().float().clamp(min=0).mean(1).mean(1)  # heads, then query tokens
            total = total + relevance[:, grid.prefix :].reshape(x.shape[0], grid.height, grid.width)
        flat = total.flatten(1)
        low, high = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
        scaled = (flat - low) / (high - low).clamp(min=1e-12)
        return Attribution(scaled.view_as(total))


def _lens_score(lens, tokens: torch.Tensor, index: int, contrast: int | None) -> torch.Tensor:
    logits = lens(tokens).float()
    s = logits[:, index]
    return s - logits[:, contrast] if contrast is not None else s
