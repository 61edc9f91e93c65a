"""Chefer, Gur & Wolf's transformer attribution ("Transformer Interpretability Beyond Attention Visualization",
CVPR 2021): the generic rule's rollout (:mod:`.chefer`) with the attention replaced by the LRP relevance that
reaches it.

Relevance starts as the one-hot target at the logits (``e_c``, or ``e_c − e_contrast``) and is propagated back
through the head and every block by their rules:

- a linear layer ``y = x Wᵀ + b``, LRP-αβ with α = 1, β = 0: ``R_x = x⁺ ⊙ (S W⁺) + x⁻ ⊙ (S W⁻)`` with
  ``S = R_y / (x⁺ W⁺ᵀ + x⁻ W⁻ᵀ)`` (only the positive contributions carry relevance; the bias takes none);
- LayerNorm, the activation (GELU, quick-GELU), softmax, dropout and layer scales pass relevance unchanged;
- the two matrix products of attention (``q kᵀ`` and ``A v``) give each factor its gradient × input,
  ``R_a = a ⊙ (S bᵀ)``, ``R_b = b ⊙ (aᵀ S)`` with ``S = R / (a b)``, each halved so the two conserve the total
  (their ``einsum`` layer and ``/ 2``);
- a residual ``a + b`` splits by gradient × input, ``a ⊙ R / (a + b)``, each part rescaled to its share
  ``|Σa| / (|Σa| + |Σb|)`` of ``ΣR`` (their ``Add``); the pooling into the head is gradient × input (their
  ``IndexSelect``).

With ``R⁽ᴬ⁾`` the relevance reaching block b's attention probabilities and ``∇A`` the target's gradient there,
``Ā_b = E_h[(∇A ⊙ R⁽ᴬ⁾)⁺]``, and the map is the class token's row of ``(I + Ā_L) ⋯ (I + Ā_1)`` over the patches
(their ``compute_rollout_attention``, no row normalisation). Sums over the tensor are per example here (the
reference sums over the batch, which it runs one image at a time).
"""

from __future__ import annotations

import torch

from glimpse.saliency.methods.chefer import Chefer
from glimpse.saliency.methods.transformer import applies, transformer_blocks, unwrap, vit_info
from glimpse.saliency.methods.vit_parts import (
    BlockParts,
    Head,
    block_parts,
    check_block,
    merge_heads,
    read_head,
    run_block,
    split_heads,
)

_EPS = 1e-9


def safe_divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a / b`` with b moved 1e-9 off zero, and 0 where ``b == 0`` (the reference's stabiliser)."""
    den = b + _EPS
    den = den + (den == 0) * _EPS
    return a / den * (b != 0)


def lrp_linear(x: torch.Tensor, weight: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Relevance at the input ``x`` (..., in) of a linear layer from ``r`` (..., out) at its output (α = 1, β = 0)."""
    wp, wn, xp, xn = weight.clamp(min=0), weight.clamp(max=0), x.clamp(min=0), x.clamp(max=0)
    s = safe_divide(r, xp @ wp.T + xn @ wn.T)
    return xp * (s @ wp) + xn * (s @ wn)


def lrp_matmul(a: torch.Tensor, b: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Relevance at both factors of ``a @ b`` from ``r`` at the product: gradient × input, halved."""
    s = safe_divide(r, a @ b)
    return a * (s @ b.transpose(-1, -2)) / 2, b * (a.transpose(-1, -2) @ s) / 2


def lrp_add(a: torch.Tensor, b: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Relevance at both terms of ``a + b``: gradient × input, rescaled per example to conserve ``Σ r``."""
    s = safe_divide(r, a + b)
    ra, rb = a * s, b * s
    dims = tuple(range(1, r.ndim))
    sa, sb, total = ra.sum(dims, keepdim=True), rb.sum(dims, keepdim=True), r.sum(dims, keepdim=True)

    def share(rel: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        return rel * safe_divide(safe_divide(own.abs(), sa.abs() + sb.abs()) * total, own)

    return share(ra, sa), share(rb, sb)


def head_relevance(head: Head, z: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Relevance at the last block's tokens z (B, T, C) from ``r`` (B, classes) at the logits."""
    n = head.norm(z)
    with torch.enable_grad():
        nf = n.detach().float().requires_grad_(True)
        pooled = head.pool(nf)
        features = head.post(head.pool(n)).detach().float()
        r_pooled = lrp_linear(features, head.weight.detach().float(), r)  # the norm after pooling passes it
        (c,) = torch.autograd.grad(pooled, nf, safe_divide(r_pooled, pooled.detach()))
    return nf.detach() * c  # the final norm passes it


def block_relevance(
    parts: BlockParts, x: torch.Tensor, attention: torch.Tensor, output: torch.Tensor, r: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(relevance at the block's input x, relevance at its attention probabilities) from ``r`` at its output.

    The block is recomputed from ``x`` by its parts and checked against the model's own ``attention`` and
    ``output`` (:func:`vit_parts.check_block`)."""
    p, f = parts, lambda t: t.detach().float()
    run = run_block(p, x)
    check_block(run, attention, output, "chefer_lrp")
    h1, q, k, v, a, ctx, o, x1, h2, g, m = (run.h1, run.q, run.k, run.v, run.a, run.ctx, run.o, run.x1, run.h2,
                                            run.g, run.m)  # fmt: skip
    r_res, r_m = lrp_add(f(x1), f(m), r)
    r_x1 = r_res + lrp_linear(f(h2), f(p.fc1.weight), lrp_linear(f(g), f(p.fc2.weight), r_m))
    r_res, r_o = lrp_add(f(x), f(o), r_x1)
    r_ctx = split_heads(lrp_linear(f(ctx), f(p.proj.weight), r_o), p.heads)
    r_a, r_v = lrp_matmul(f(a), f(v), r_ctx)
    r_q, r_kt = lrp_matmul(f(q), f(k).transpose(-1, -2), r_a)
    r_h1 = sum(
        lrp_linear(f(h1), f(w), merge_heads(rel))
        for (w, _), rel in zip((p.q, p.k, p.v), (r_q, r_kt.transpose(-1, -2), r_v))
    )
    return r_res + r_h1, r_a


def attention_relevance(bundle, cap, target) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(per block, the relevance R⁽ᴬ⁾ (B, heads, T, T) at its attention probabilities; the relevance at the first
    block's input tokens), for the tokens and attention ``cap`` recorded and the target's one-hot at the logits."""
    head = read_head(unwrap(bundle.model))
    with torch.no_grad():
        logits = head(cap.hidden[-1].detach())
        r = torch.zeros(logits.shape, device=logits.device)
        r[:, int(target.index)] = 1.0
        if target.contrast is not None:
            r[:, int(target.contrast)] = -1.0
        r = head_relevance(head, cap.hidden[-1].detach(), r)
        relevances = [None] * len(cap.blocks)
        for i in reversed(range(len(cap.blocks))):
            x, a, out = (t.detach() for t in (cap.inputs[i], cap.attentions[i], cap.hidden[i]))
            r, relevances[i] = block_relevance(block_parts(cap.blocks[i]), x, a, out, r)
    return relevances, r


def lrp_applies(bundle) -> str | None:
    """None when :class:`CheferLRP` can read every block and the head of ``bundle``, else why not."""
    why = applies(bundle)
    if why is not None:
        return why
    net = unwrap(bundle.model)
    for i, block in enumerate(transformer_blocks(net)):
        parts = block_parts(block)
        if isinstance(parts, str):
            return f"propagates LRP relevance through each block, and block {i} cannot be read: {parts}"
    try:
        read_head(net)
    except ValueError as e:
        return f"propagates LRP relevance from the head, and {str(e).removeprefix('model: ')}"
    return None


class CheferLRP(Chefer):
    info = vit_info(
        "chefer_lrp",
        "Transformer attribution (LRP)",
        explanation="Chefer et al.'s CVPR 2021 method: LRP relevance carried back from the class through every layer,\n"
        "the relevance reaching each block's attention times its gradient (positive part, heads' mean), rolled out.",
        citation="Chefer, Gur & Wolf, Transformer Interpretability Beyond Attention Visualization, CVPR 2021",
        units="LRP attention relevance",
    )

    def applies(self, bundle) -> str | None:
        return lrp_applies(bundle)

    def weights(self, ctx, cap, start: int) -> list[torch.Tensor]:
        """The LRP relevance reaching each block's attention, R⁽ᴬ⁾, instead of the attention."""
        return attention_relevance(ctx.bundle, cap, ctx.target)[0][start:]
