"""A ViT read from its modules: each block as one generic pre-norm description (:class:`BlockParts`) and the
model's head (:class:`Head`: final norm, pooling, classifier), for the methods that recompute or propagate
through them (LeGrad's logit lens, Chefer et al.'s LRP).

One reader serves every family; only the module names differ:

==================  ==========================  =======================  =============================
part                Hugging Face ViT/DeiT/DINOv2  Hugging Face CLIP vision  timm
==================  ==========================  =======================  =============================
ln₁, ln₂            layernorm_before/after,     layer_norm1/2            norm1/2
                    norm1/2 (DINOv2)
attention           attention.{q,k,v,o}_proj    self_attn.{q,k,v,out}_proj  attn.qkv (fused), attn.proj
MLP                 mlp.fc1, activation_fn, fc2  mlp.fc1, activation_fn, fc2  mlp.fc1, act, fc2
layer scales        layer_scale1/2 (DINOv2)     —                        ls1/2
==================  ==========================  =======================  =============================

torchvision's ``VisionTransformer`` names them ``ln_1``, ``ln_2``, ``self_attention`` (an ``nn.MultiheadAttention``:
the fused ``in_proj_weight`` and ``out_proj``) and ``mlp`` (a Sequential: Linear, GELU, Dropout, Linear, Dropout).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from glimpse.saliency.methods.transformer import unwrap

_LN1 = ("layernorm_before", "layer_norm1", "norm1", "ln_1")
_LN2 = ("layernorm_after", "layer_norm2", "norm2", "ln_2")
_ATTENTION = ("attention", "self_attn", "attn", "self_attention")
_PROJ = ("o_proj", "out_proj", "proj")
_ACT = ("activation_fn", "act")
_SCALES = (("layer_scale1", "ls1"), ("layer_scale2", "ls2"))
#: submodules that change the computation below unless they are the identity (timm's q/k norms, its norm before
#: the output projection, its MLP norm)
_MUST_BE_IDENTITY = (("attention", ("q_norm", "k_norm", "norm")), ("mlp", ("norm",)))


def _first(module: nn.Module, names: tuple[str, ...]):
    for n in names:
        found = getattr(module, n, None)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class BlockParts:
    """One pre-norm transformer block:

    ``x₁ = x + ls₁(proj(softmax(q kᵀ · scale) v))`` with ``q, k, v`` linear maps of ``ln₁(x)`` split into
    ``heads`` heads, then ``x₂ = x₁ + ls₂(fc₂(act(fc₁(ln₂(x₁)))))``; a missing layer scale is the identity.
    ``q``, ``k``, ``v`` are (weight, bias) pairs (slices of a fused qkv projection where the model has one).
    """

    ln1: nn.Module
    q: tuple[torch.Tensor, torch.Tensor | None]
    k: tuple[torch.Tensor, torch.Tensor | None]
    v: tuple[torch.Tensor, torch.Tensor | None]
    proj: nn.Linear
    ln2: nn.Module
    fc1: nn.Linear
    act: nn.Module
    fc2: nn.Linear
    ls1: nn.Module | None
    ls2: nn.Module | None
    heads: int
    scale: float


def block_parts(block: nn.Module) -> BlockParts | str:
    """``block`` read as :class:`BlockParts`, or why it cannot be (a part not found)."""
    ln1, ln2, attn = _first(block, _LN1), _first(block, _LN2), _first(block, _ATTENTION)
    mlp = getattr(block, "mlp", None)
    if ln1 is None or ln2 is None or attn is None or mlp is None:
        return f"{type(block).__name__} has no pre-norm attention and MLP of the known layouts"
    for owner, names in _MUST_BE_IDENTITY:
        part = attn if owner == "attention" else mlp
        for n in names:
            if not isinstance(getattr(part, n, None), (nn.Identity, type(None))):
                return f"{type(block).__name__}'s {owner} has a {n} the LRP rules here do not cover"
    if all(hasattr(attn, f"{p}_proj") for p in "qkv"):
        q, k, v = ((getattr(attn, f"{p}_proj").weight, getattr(attn, f"{p}_proj").bias) for p in "qkv")
    elif isinstance(getattr(attn, "qkv", None), nn.Linear):
        bias = attn.qkv.bias.chunk(3) if attn.qkv.bias is not None else (None,) * 3
        q, k, v = zip(attn.qkv.weight.chunk(3), bias)
    elif isinstance(attn, nn.MultiheadAttention):
        if attn.in_proj_weight is None or attn.bias_k is not None or attn.add_zero_attn or not attn.batch_first:
            return "its nn.MultiheadAttention has separate q/k/v sizes, added keys or is not batch-first"
        bias = attn.in_proj_bias.chunk(3) if attn.in_proj_bias is not None else (None,) * 3
        q, k, v = zip(attn.in_proj_weight.chunk(3), bias)
    else:
        return f"{type(attn).__name__} has neither q/k/v projections nor a fused qkv"
    fc1, act, fc2 = _mlp(mlp)
    proj = _first(attn, _PROJ)
    if not all(isinstance(m, nn.Linear) for m in (proj, fc1, fc2)) or act is None:
        return f"{type(block).__name__} has no output projection, or its MLP is not fc1 -> activation -> fc2"
    heads = _first(attn, ("num_attention_heads", "num_heads"))
    if not isinstance(heads, int):
        return f"{type(attn).__name__} does not say its number of heads"
    scale = _first(attn, ("scaling", "scale"))
    ls1, ls2 = (_first(block, names) for names in _SCALES)
    return BlockParts(ln1=ln1, q=tuple(q), k=tuple(k), v=tuple(v), proj=proj, ln2=ln2, fc1=fc1, act=act, fc2=fc2,
                      ls1=ls1, ls2=ls2, heads=heads,
                      scale=float(scale) if scale is not None else (q[0].shape[0] // heads) ** -0.5)  # fmt: skip


@dataclass(frozen=True)
class BlockPass:
    """One block recomputed from its input ``x`` by its parts (:func:`run_block`): every intermediate an LRP
    rule reads. ``q``, ``k``, ``v``, ``a`` (the attention probabilities) are per head (B, heads, T, d or T)."""

    h1: torch.Tensor
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    a: torch.Tensor
    ctx: torch.Tensor
    o: torch.Tensor
    x1: torch.Tensor
    h2: torch.Tensor
    g: torch.Tensor
    m: torch.Tensor

    @property
    def out(self) -> torch.Tensor:
        return self.x1 + self.m


def split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    return t.unflatten(-1, (heads, -1)).transpose(1, 2)  # (B, T, C) -> (B, heads, T, d)


def merge_heads(t: torch.Tensor) -> torch.Tensor:
    return t.transpose(1, 2).flatten(2)  # (B, heads, T, d) -> (B, T, C)


def run_block(
    p: BlockParts,
    x: torch.Tensor,
    *,
    norm: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
    act: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
    qk: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = torch.matmul,
    av: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = torch.matmul,
) -> BlockPass:
    """The block's forward pass from ``x`` by :class:`BlockParts`' formula. ``norm``, ``act``, ``qk`` and ``av``
    replace how the two norms, the MLP's activation and attention's two products (``q kᵀ``, ``A v``) are applied
    (``norm(module, x)``, ``act(module, x)``): the same values with another backward pass, for rules computed as
    gradients."""
    norm = norm or (lambda module, t: module(t))
    act = act or (lambda module, t: module(t))
    h1 = norm(p.ln1, x)
    q, k, v = (split_heads(F.linear(h1, w, b), p.heads) for w, b in (p.q, p.k, p.v))
    a = (qk(q, k.transpose(-1, -2)) * p.scale).softmax(-1, dtype=torch.float32).to(q.dtype)
    ctx = merge_heads(av(a, v))
    o = p.proj(ctx)
    o = p.ls1(o) if p.ls1 is not None else o
    x1 = x + o
    h2 = norm(p.ln2, x1)
    g = act(p.act, p.fc1(h2))
    m = p.fc2(g)
    m = p.ls2(m) if p.ls2 is not None else m
    return BlockPass(h1=h1, q=q, k=k, v=v, a=a, ctx=ctx, o=o, x1=x1, h2=h2, g=g, m=m)


def check_block(run: BlockPass, attention: torch.Tensor, output: torch.Tensor, method: str) -> None:
    """ValueError unless the recomputed block reproduces the model's own attention and output: a layout read
    wrongly is an error, not a wrong map."""
    a, out = run.a.detach(), run.out.detach()
    if not (
        torch.allclose(a, attention.to(a), atol=1e-3) and torch.allclose(out, output.to(out), rtol=1e-3, atol=1e-3)
    ):
        raise ValueError(
            "model: a block recomputed from its layers (norms, q/k/v, projection, MLP, layer scales) does not "
            f"reproduce the model's attention or output; {method} cannot read this layout"
        )


def _mlp(mlp: nn.Module) -> tuple:
    """(fc1, activation, fc2) of a named MLP, or of a Sequential of two linears around one activation (dropouts
    are the identity in eval mode); Nones where it is neither."""
    if isinstance(mlp, nn.Sequential):
        parts = [m for m in mlp if not isinstance(m, nn.Dropout)]
        if len(parts) == 3 and isinstance(parts[0], nn.Linear) and isinstance(parts[2], nn.Linear):
            return parts[0], parts[1], parts[2]
        return None, None, None
    return getattr(mlp, "fc1", None), _first(mlp, _ACT), getattr(mlp, "fc2", None)


@dataclass(frozen=True)
class Head:
    """The model's head on the last block's tokens z (B, T, C): ``logits = post(pool(norm(z))) Wᵀ + b``, ``pool``
    linear in the tokens (the class token, a mean, or both side by side)."""

    norm: Callable[[torch.Tensor], torch.Tensor]
    pool: Callable[[torch.Tensor], torch.Tensor]
    post: Callable[[torch.Tensor], torch.Tensor]
    weight: torch.Tensor
    bias: torch.Tensor | None

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return F.linear(self.post(self.pool(self.norm(z))), self.weight, self.bias)


def _identity(z: torch.Tensor) -> torch.Tensor:
    return z


def _cls(z: torch.Tensor) -> torch.Tensor:
    return z[:, 0]


def _linear(net: nn.Module, name: str) -> nn.Linear:
    head = getattr(net, name)
    if not isinstance(head, nn.Linear):
        raise ValueError(f"model: its head {name} is {type(head).__name__}, not a linear classifier")
    return head


def read_head(net: nn.Module) -> Head:
    """The head of a known classifier: Hugging Face ViT, DeiT (with or without its teacher head), DINOv2 (with
    registers), CLIP-vision, and timm ViTs pooling the class token or the mean. ValueError for any other."""
    name = type(net).__name__
    if name in ("ViTForImageClassification", "DeiTForImageClassification"):
        c = _linear(net, "classifier")
        return Head(getattr(net, net.base_model_prefix).layernorm, _cls, _identity, c.weight, c.bias)
    if name == "DeiTForImageClassificationWithTeacher":
        a, b = _linear(net, "cls_classifier"), _linear(net, "distillation_classifier")  # their mean, as one layer
        return Head(net.deit.layernorm, lambda z: torch.cat([z[:, 0], z[:, 1]], 1), _identity,
                    torch.cat([a.weight, b.weight], 1) / 2, (a.bias + b.bias) / 2)  # fmt: skip
    if name in ("Dinov2ForImageClassification", "Dinov2WithRegistersForImageClassification"):
        base = net.dinov2 if hasattr(net, "dinov2") else net.dinov2_with_registers
        skip = 1 + int(getattr(net.config, "num_register_tokens", 0) or 0)
        c = _linear(net, "classifier")
        return Head(base.layernorm, lambda z: torch.cat([z[:, 0], z[:, skip:].mean(1)], 1), _identity,
                    c.weight, c.bias)  # fmt: skip
    if name == "VisionTransformer" and hasattr(net, "encoder") and hasattr(net, "heads"):  # torchvision
        if list(dict(net.heads.named_children())) != ["head"]:
            raise ValueError("model: its head has a pre-logits layer (representation_size), which is not covered")
        c = _linear(net.heads, "head")
        return Head(net.encoder.ln, _cls, _identity, c.weight, c.bias)
    if name == "CLIPForImageClassification":
        c = _linear(net, "classifier")
        return Head(_identity, lambda z: z[:, 1:].mean(1), _identity, c.weight, c.bias)
    if hasattr(net, "forward_head") and hasattr(net, "norm") and getattr(net, "attn_pool", None) is None:
        pool, prefix = getattr(net, "global_pool", None), int(getattr(net, "num_prefix_tokens", 1))
        pools = {"token": _cls, "avg": lambda z: z[:, prefix:].mean(1)}
        if pool in pools:
            c = _linear(net, "head")
            return Head(net.norm, pools[pool], getattr(net, "fc_norm", None) or _identity, c.weight, c.bias)
    raise ValueError(f"model: how {name} pools its tokens into its head is not known")


def logit_lens(bundle) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's final norm, pooling and head as a function of one block's tokens (B, T, C) -> logits: its
    :func:`read_head`, or timm's own ``forward_head`` (any of its poolings). ValueError for an unknown model."""
    net = unwrap(bundle.model)
    try:
        return read_head(net)
    except ValueError as err:
        if hasattr(net, "forward_head") and hasattr(net, "norm"):  # timm VisionTransformer
            return lambda z: net.forward_head(net.norm(z))
        raise ValueError(
            f"method: legrad cannot read {type(net).__name__}'s head: {str(err).removeprefix('model: ')}"
        ) from None
