"""AttnLRP (Achtibat et al., "AttnLRP: Attention-Aware Layer-Wise Relevance Propagation for Transformers",
ICML 2024), computed as their ``lxt.efficient`` computes it: one backward pass whose gradient is modified at the
non-linear operations, so that gradient × input at any layer is that layer's LRP relevance.

Every block and the head are recomputed from the recorded tokens by their parts (:func:`vit_parts.run_block`,
checked against the model's own attention and output), with these rules:

- linear layers, layer scales, the residual adds, the pooling and the class token's scale: the ε-rule, which in
  this form is the plain gradient (the biases take their share, so the total is not conserved exactly);
- LayerNorm: the identity rule on the normalisation, i.e. the standard deviation is a constant (detached); the
  centring is linear;
- the MLP's activation (GELU, quick-GELU, …): the identity rule, relevance passes unchanged, i.e. the gradient
  times ``act(x) / x``;
- softmax: their rule ``R_in = x ⊙ (R_out − s Σ R_out)`` (a Taylor expansion at zero with bias), which is
  gradient × input, i.e. the plain gradient here;
- the two products of attention (``q kᵀ`` and ``A v``): the uniform rule, half of the relevance to each factor,
  i.e. half the gradient to each (so q and k get a quarter, v a half: lxt's ``divide_gradient`` 4, 4, 2).

``attention="cp"`` is CP-LRP inside attention (Ali et al. 2022), lxt's default for torchvision's ViT: the
attention probabilities are constants (q and k detached), all relevance flows through the values; the paper's
appendix A.2.3 uses it on ViTs (lxt: "easier to tune for gamma").

Relevance starts as the target's logit (the seed gradient is 1; the biases and the softmax rule do not conserve it,
so the map does not sum to the logit) and is read as gradient × input on the tokens entering block ``start_block``
(0: the first block's input, the patch and position embeddings, after CLIP's pre-norm), summed over channels: one
value per patch, signed (the class and register tokens' shares are not drawn). The patch embedding itself is not
crossed (lxt does, with a γ-rule on the convolution, to reach pixels).
"""

from __future__ import annotations

import torch
from torch import nn

from glimpse.saliency.base import Cost
from glimpse.saliency.contract import Attribution
from glimpse.saliency.methods.chefer_lrp import lrp_applies, safe_divide
from glimpse.saliency.methods.transformer import TransformerMethod, _start, transformer_blocks, unwrap, vit_info
from glimpse.saliency.methods.vit_parts import Head, _identity, block_parts, check_block, read_head, run_block


class _IdentityRule(torch.autograd.Function):
    """``act(x)`` whose backward passes the gradient times ``act(x) / x`` (relevance unchanged)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return y.clone()

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return g * safe_divide(y, x), None


class _UniformMatmul(torch.autograd.Function):
    """``a @ b`` whose backward gives each factor half its gradient (half the relevance each)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (g @ b.transpose(-1, -2)) / 2, (a.transpose(-1, -2) @ g) / 2


def _constant_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` as a constant: no gradient (CP-LRP's attention logits)."""
    return a.detach() @ b.detach()


def identity_activation(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return _IdentityRule.apply(x, module(x.detach()))


def _norm_why(module) -> str | None:
    """None when :func:`layer_norm_identity` has a rule for ``module``, else why not."""
    if module is None or module is _identity or isinstance(module, nn.Identity):
        return None
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) == 1:
        return None
    return f"its {type(module).__name__} is not a LayerNorm over the channels, and attnlrp has no rule for it"


def layer_norm_identity(module, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm with its standard deviation held constant (the identity rule on the normalisation); the
    identity where the model has no norm there. ValueError for any other norm (RMSNorm, …)."""
    why = _norm_why(module)
    if why is not None:
        raise ValueError(f"model: {why}")
    if not isinstance(module, nn.LayerNorm):
        return x
    centred = x - x.mean(-1, keepdim=True)
    std = (centred.pow(2).mean(-1, keepdim=True) + module.eps).sqrt()
    y = centred / std.detach()
    if module.weight is not None:
        y = y * module.weight
    return y + module.bias if module.bias is not None else y


def head_logits(head: Head, z: torch.Tensor) -> torch.Tensor:
    """The head's logits from the last block's tokens, its norms under the identity rule."""
    pooled = head.pool(layer_norm_identity(head.norm, z))
    return nn.functional.linear(layer_norm_identity(head.post, pooled), head.weight, head.bias)


def attnlrp_applies(bundle) -> str | None:
    """None when :class:`AttnLRP` can recompute every block and the head of ``bundle`` under its rules."""
    why = lrp_applies(bundle)
    if why is not None:
        return why.replace("LRP relevance", "AttnLRP relevance")
    net = unwrap(bundle.model)
    head = read_head(net)
    for i, block in enumerate(transformer_blocks(net)):
        parts = block_parts(block)
        for norm in (parts.ln1, parts.ln2):
            if (why := _norm_why(norm)) is not None:
                return f"recomputes each block under LRP rules, and in block {i} {why}"
    for norm in (head.norm, head.post):
        if (why := _norm_why(norm)) is not None:
            return f"recomputes the head under LRP rules, and {why}"
    return None


class AttnLRP(TransformerMethod):
    info = vit_info(
        "attnlrp",
        "AttnLRP",
        explanation="LRP with rules for attention (Achtibat et al. 2024): one backward pass with the gradient\n"
        "modified at LayerNorm, the activations, softmax and attention's products; relevance of each patch token.",
        citation="Achtibat et al., AttnLRP: Attention-Aware Layer-Wise Relevance Propagation for Transformers, "
        "ICML 2024",
        units="AttnLRP relevance (logit share)",
        params={"attention": "attnlrp"},
        choices={"attention": ["attnlrp", "cp"]},
    )

    def applies(self, bundle) -> str | None:
        return attnlrp_applies(bundle)

    def cost(self, params, where):
        """The model's own pass is forward only (it records each block's tokens and attention); the recomputation
        under the rules, about one more forward and backward pass of the blocks, runs outside the model, which
        the images counted here (those through the model) do not include."""
        return Cost(forward=1, backward=0)

    def attribute(self, ctx, x, params):
        rule = params.get("attention", "attnlrp")
        if rule not in ("attnlrp", "cp"):
            raise ValueError(f"params: attention must be attnlrp or cp, not {rule!r}")
        cap, score = self._forward(ctx, x, grad=False)
        start = _start(params, len(cap.blocks))
        head = read_head(unwrap(ctx.bundle.model))
        qk, av = (_UniformMatmul.apply,) * 2 if rule == "attnlrp" else (_constant_product, torch.matmul)
        with torch.enable_grad():
            tokens = cap.inputs[start].detach().clone().requires_grad_(True)
            z = tokens
            for i in range(start, len(cap.blocks)):
                parts = block_parts(cap.blocks[i])
                run = run_block(parts, z, norm=layer_norm_identity, act=identity_activation, qk=qk, av=av)
                check_block(run, cap.attentions[i], cap.hidden[i], "attnlrp")
                z = run.out
            logits = head_logits(head, z).float()
            s = logits[:, int(ctx.target.index)]
            if ctx.target.contrast is not None:
                s = s - logits[:, int(ctx.target.contrast)]
            if not torch.allclose(s.detach(), score.detach().float(), rtol=1e-3, atol=1e-3):
                raise ValueError(
                    f"method: attnlrp recomputed the score as {float(s[0]):.4g} from the blocks and the head, the "
                    f"model gives {float(score[0]):.4g}; this model's head is not read correctly"
                )
            (g,) = torch.autograd.grad(s.sum(), tokens)
        relevance = (tokens.detach().float() * g.float()).sum(-1)  # (B, T)
        grid = ctx.bundle.token_grid
        return Attribution(relevance[:, grid.prefix :].reshape(x.shape[0], grid.height, grid.width))
