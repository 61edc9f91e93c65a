"""What the methods of vision transformers share: finding a ViT's blocks, capturing their attention in one pass,
the base class and description of these methods, and the token-grid helpers. The methods are one file each:
``rollout`` (Abnar & Zuidema 2020), ``chefer`` (Chefer et al.'s generic rule, ICCV 2021), ``chefer_lrp`` (their
LRP-based transformer attribution, CVPR 2021) and ``legrad`` (Bousselham et al. 2025); ``vit_parts`` reads a
block's layers and the model's head from its modules.

They apply to a ViT (``bundle.kind == "vit"``: Hugging Face ViT, DeiT, DINOv2 and CLIP-vision classifiers, timm
ViTs) and are hidden for other models with the reason.

The attention probabilities of every block are captured during one forward pass (:class:`attention_capture`):
in each block, the first output of a submodule that is a (B, heads, T, T) tensor whose rows sum to 1, T being
the block's token count — Hugging Face's eager attention returns them beside its output, timm's ``attn_drop``
sees them when fused attention is off (switched off for the pass). Maps are on the patch grid
(``bundle.token_grid``); the engine upsamples them bilinearly to the model input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from glimpse.saliency.base import Cost, MethodInfo
from glimpse.saliency.contract import Method

#: a ViT block's pre-attention norm in Hugging Face (ViT/DeiT/DINOv2; CLIP), timm and torchvision
BLOCK_NORMS = ("layernorm_before", "layer_norm1", "norm1", "ln_1")
HEAD_FUSIONS = ["mean", "max", "min"]


def applies(bundle) -> str | None:
    """None when the transformer methods apply to ``bundle``, else why not."""
    if getattr(bundle, "kind", None) != "vit" or getattr(bundle, "token_grid", None) is None:
        return "reads a vision transformer's attention, and this model is not a ViT (no token grid)"
    if transformer_blocks(unwrap(bundle.model)) is None:
        return "reads a vision transformer's attention, and no list of transformer blocks was found in this model"
    return None


def unwrap(model: nn.Module) -> nn.Module:
    """The Hugging Face or timm network inside Glimpse's wrappers (``LogitsOnly.hf``)."""
    return getattr(model, "hf", model)


def transformer_blocks(net: nn.Module) -> list[nn.Module] | None:
    """The blocks of a ViT: the longest ModuleList (or Sequential) whose items hold a pre-attention norm."""
    best = None
    for module in net.modules():
        if isinstance(module, (nn.ModuleList, nn.Sequential)) and len(module) > 0:
            if all(any(hasattr(b, n) for n in BLOCK_NORMS) for b in module) and (
                best is None or len(module) > len(best)
            ):
                best = module
    return None if best is None else list(best)


def _first_tensor(output) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return getattr(output, "last_hidden_state", None)


def _attention_in(output, tokens: int) -> torch.Tensor | None:
    """The (B, heads, T, T) attention probabilities in a submodule's output, if it holds them."""
    items = output if isinstance(output, (tuple, list)) else (output,)
    for t in items:
        if isinstance(t, torch.Tensor) and t.ndim == 4 and t.shape[-1] == t.shape[-2] == tokens:
            rows = t.detach().float().sum(-1)
            if torch.allclose(rows, torch.ones_like(rows), atol=1e-3):
                return t
    return None


def _explicit_attention(module: nn.MultiheadAttention, args, kwargs, output):
    """``nn.MultiheadAttention``'s output recomputed with its probabilities ``softmax(q kᵀ / √d)`` formed, returned
    beside it so that they are in the graph the output's gradient flows through (the weights it returns when asked
    are a copy made after use, which no gradient reaches; torchvision's ViT does not ask).

    Only the self-attention a ViT uses (batch-first, one input projection, no masks, no extra key/value bias, no
    dropout); any other call is left as it was, and :meth:`attention_capture.checked` then says no attention was
    seen. A recomputation that does not reproduce the module's own output is an error, not a wrong map."""
    query = args[0] if args else kwargs.get("query")
    unusual = (
        len(args) > 3
        or not module.batch_first
        or not module._qkv_same_embed_dim
        or module.bias_k is not None
        or module.add_zero_attn
        or kwargs.get("key_padding_mask") is not None
        or kwargs.get("attn_mask") is not None
        or kwargs.get("is_causal", False)
        or (module.training and module.dropout > 0)
        or query is None
        or query.ndim != 3
    )
    if unusual:
        return None
    b, t, c = query.shape
    heads = module.num_heads
    q, k, v = F.linear(query, module.in_proj_weight, module.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (z.reshape(b, t, heads, c // heads).transpose(1, 2) for z in (q, k, v))
    probs = (q @ k.transpose(-2, -1) / math.sqrt(c // heads)).softmax(-1)
    out = module.out_proj((probs @ v).transpose(1, 2).reshape(b, t, c))
    own = output[0] if isinstance(output, tuple) else output
    if not torch.allclose(out.detach(), own.detach(), rtol=1e-3, atol=1e-5):
        raise ValueError(
            "model: recomputing nn.MultiheadAttention with its probabilities did not reproduce its output; "
            "these methods cannot read its attention"
        )
    return out, probs


class attention_capture:
    """Context manager: during the forward passes inside it, ``attentions[i]`` is block i's attention (B, heads,
    T, T), ``inputs[i]`` and ``hidden[i]`` its input and output tokens (B, T, C), all in the autograd graph. Fused
    attention (timm's ``fused_attn``, which never forms the probabilities) is switched off inside and restored
    after; ``nn.MultiheadAttention`` (torchvision's ViT) is recomputed by a forward hook with its per-head
    probabilities formed (:func:`_explicit_attention`)."""

    def __init__(self, bundle) -> None:
        self.net = unwrap(bundle.model)
        blocks = transformer_blocks(self.net)
        if blocks is None:
            raise ValueError("model: no list of transformer blocks was found; these methods need a ViT")
        self.blocks = blocks
        grid = bundle.token_grid
        self.tokens = grid.prefix + grid.height * grid.width
        self.attentions: list[torch.Tensor | None] = []
        self.inputs: list[torch.Tensor | None] = []
        self.hidden: list[torch.Tensor | None] = []
        self._handles: list = []
        self._fused: list[tuple[nn.Module, object]] = []

    def __enter__(self) -> attention_capture:
        self.attentions = [None] * len(self.blocks)
        self.inputs = [None] * len(self.blocks)
        self.hidden = [None] * len(self.blocks)
        try:
            for i, block in enumerate(self.blocks):
                for module in block.modules():
                    if hasattr(module, "fused_attn"):
                        self._fused.append((module, module.fused_attn))
                        module.fused_attn = False
                    if isinstance(module, nn.MultiheadAttention):  # torchvision's ViT calls it with need_weights=False
                        self._handles.append(module.register_forward_hook(_explicit_attention, with_kwargs=True))
                    if module is not block:
                        self._handles.append(module.register_forward_hook(self._attention_hook(i)))
                self._handles.append(block.register_forward_pre_hook(self._input_hook(i), with_kwargs=True))
                self._handles.append(block.register_forward_hook(self._block_hook(i)))
        except BaseException:
            self.__exit__()
            raise
        return self

    def _attention_hook(self, i: int):
        def hook(_module, _inputs, output):
            if self.attentions[i] is None:
                self.attentions[i] = _attention_in(output, self.tokens)

        return hook

    def _input_hook(self, i: int):
        def hook(_module, args, kwargs):
            self.inputs[i] = args[0] if args else kwargs.get("hidden_states", kwargs.get("x"))

        return hook

    def _block_hook(self, i: int):
        def hook(_module, _inputs, output):
            self.hidden[i] = _first_tensor(output)

        return hook

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        for module, fused in self._fused:
            module.fused_attn = fused
        self._fused.clear()

    def checked(self) -> list[torch.Tensor]:
        """Every block's attention; ValueError naming the first block where none was seen."""
        missing = [i for i, a in enumerate(self.attentions) if a is None]
        if missing:
            raise ValueError(
                f"model: no attention probabilities seen in block {missing[0]} (of {len(self.blocks)}); load the "
                "model with eager attention (Glimpse's hf: loader does) so they can be read"
            )
        return list(self.attentions)


def fuse_heads(a: torch.Tensor, how: str) -> torch.Tensor:
    """(B, heads, T, T) -> (B, T, T): the heads' mean, maximum or minimum."""
    if how == "mean":
        return a.mean(1)
    if how == "max":
        return a.amax(1)
    if how == "min":
        return a.amin(1)
    raise ValueError(f"params: head_fusion must be one of {', '.join(HEAD_FUSIONS)}, got {how!r}")


def class_row(r: torch.Tensor, grid) -> torch.Tensor:
    """(B, T, T) relevance -> (B, h, w): the class token's row over the patches (the mean row without one)."""
    row = r[:, 0] if grid.prefix > 0 else r.mean(1)
    return row[:, grid.prefix :].reshape(r.shape[0], grid.height, grid.width)


def relevance_rollout(cams: list[torch.Tensor]) -> torch.Tensor:
    """Chefer et al.'s rollout of per-block (B, T, T) relevances Ā: ``R ← R + Ā R`` from ``R = I``, that is
    ``(I + Ā_L) ⋯ (I + Ā_1)`` (their ``compute_rollout_attention``; no row normalisation)."""
    r = torch.eye(cams[0].shape[-1], device=cams[0].device).expand(cams[0].shape[0], -1, -1)
    for cam in cams:
        r = r + cam @ r
    return r


def _start(params: dict, blocks: int) -> int:
    start = int(params.get("start_block", 0))
    if not -blocks <= start < blocks:
        raise ValueError(f"params: start_block must be in {-blocks}..{blocks - 1} (the model has {blocks} blocks)")
    return start % blocks


class TransformerMethod(Method):
    """A method that reads a ViT's attention: ``applies(bundle)`` says whether it can run on a model."""

    #: it reads the class score's gradient through the attention (one forward and backward pass), else the
    #: attention of one forward pass alone
    grad = False

    def applies(self, bundle) -> str | None:
        return applies(bundle)

    def cost(self, params, where):
        return Cost(forward=0, backward=1) if self.grad else Cost(forward=1, backward=0)

    def _attentions(self, ctx, x: torch.Tensor, params: dict) -> tuple[attention_capture, torch.Tensor, list, int]:
        """One pass recording every block's attention: (the capture, the class score, the attention maps, the
        first block ``start_block`` names)."""
        cap, score = self._forward(ctx, x, grad=self.grad)
        attentions = cap.checked()
        return cap, score, attentions, _start(params, len(attentions))

    def _forward(self, ctx, x: torch.Tensor, *, grad: bool) -> tuple[attention_capture, torch.Tensor]:
        why = self.applies(ctx.bundle)
        if why is not None:
            raise ValueError(f"method: {self.info.name} {why}")
        x = x.detach().requires_grad_(grad)  # frozen weights: the input starts the graph the gradients need
        with torch.set_grad_enabled(grad), attention_capture(ctx.bundle) as cap:
            score = ctx.score(x)[:, 0]
        cap.checked()
        return cap, score


def vit_info(name: str, label: str, explanation: str, citation: str, units: str, **extra) -> MethodInfo:
    """A transformer method's description: the attention family, ViTs only, ``start_block`` (the first block read;
    negative counts from the last) among its parameters."""
    params = {**extra.pop("params", {}), "start_block": 0}
    return MethodInfo(name=name, label=label, family="attention", models="vit", params=params,
                      explanation=explanation, citation=citation, units=units, **extra)  # fmt: skip
