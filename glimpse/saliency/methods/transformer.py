"""Methods of vision transformers, read from their attention: attention rollout, Chefer et al.'s generic
relevance rule and LeGrad. They apply to a ViT (``bundle.kind == "vit"``: Hugging Face ViT, DeiT, DINOv2 and
CLIP-vision classifiers, timm ViTs) and are hidden for other models with the reason.

The attention probabilities of every block are captured during one forward pass (:class:`attention_capture`):
in each block, the first output of a submodule that is a (B, heads, T, T) tensor whose rows sum to 1, T being
the block's token count — Hugging Face's eager attention returns them beside its output, timm's ``attn_drop``
sees them when fused attention is off (switched off for the pass).

- **Rollout** (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020): per block the heads'
  mean Ā, the residual added as ``0.5 Ā + 0.5 I``, and the products from the first block up; the class token's
  row over the patches. Class-agnostic (the target does not enter).
- **Chefer** (Chefer, Gur & Wolf, "Generic Attention-model Explainability for Interpreting Bi-Modal and
  Encoder-Decoder Transformers", ICCV 2021): ``R ← R + Ā R`` from ``R = I`` with ``Ā = E_h[(∇A ⊙ A)⁺]``, the
  gradient of the target score weighting each block's attention; the class token's row.
- **LeGrad** (Bousselham et al., "LeGrad: An Explainability Method for Vision Transformers via Feature Formation
  Sensitivity", ICCV 2025): each block's tokens go through the model's own final norm, pooling and head (the
  score that block would give); the positive part of that score's gradient with respect to the block's
  attention, averaged over heads and query tokens, summed over blocks and min-max normalised (the reference
  code's ``compute_legrad``).

Maps are on the patch grid (``bundle.token_grid``); the engine upsamples them bilinearly to the model input.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from glimpse.saliency.base import Cost, MethodInfo
from glimpse.saliency.contract import Attribution, Method

#: a ViT block's pre-attention norm in Hugging Face (ViT/DeiT/DINOv2; CLIP), timm and torchvision
BLOCK_NORMS = ("layernorm_before", "layer_norm1", "norm1", "ln_1")
HEAD_FUSIONS = ["mean", "max", "min"]


def applies(bundle) -> str | None:
    """None when the transformer methods apply to ``bundle``, else why not."""
    if getattr(bundle, "kind", None) != "vit" or getattr(bundle, "token_grid", None) is None:
        return "reads a vision transformer's attention, and this model is not a ViT (no token grid)"
    if transformer_blocks(_unwrap(bundle.model)) is None:
        return "reads a vision transformer's attention, and no list of transformer blocks was found in this model"
    return None


def _unwrap(model: nn.Module) -> nn.Module:
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


class attention_capture:
    """Context manager: during the forward passes inside it, ``attentions[i]`` is block i's attention (B, heads,
    T, T) and ``hidden[i]`` its output tokens (B, T, C), both in the autograd graph. Fused attention (timm's
    ``fused_attn``, which never forms the probabilities) is switched off inside and restored after."""

    def __init__(self, bundle) -> None:
        self.net = _unwrap(bundle.model)
        blocks = transformer_blocks(self.net)
        if blocks is None:
            raise ValueError("model: no list of transformer blocks was found; these methods need a ViT")
        self.blocks = blocks
        grid = bundle.token_grid
        self.tokens = grid.prefix + grid.height * grid.width
        self.attentions: list[torch.Tensor | None] = []
        self.hidden: list[torch.Tensor | None] = []
        self._handles: list = []
        self._fused: list[tuple[nn.Module, object]] = []

    def __enter__(self) -> attention_capture:
        self.attentions = [None] * len(self.blocks)
        self.hidden = [None] * len(self.blocks)
        try:
            for i, block in enumerate(self.blocks):
                for module in block.modules():
                    if hasattr(module, "fused_attn"):
                        self._fused.append((module, module.fused_attn))
                        module.fused_attn = False
                    if module is not block:
                        self._handles.append(module.register_forward_hook(self._attention_hook(i)))
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


def _fuse(a: torch.Tensor, how: str) -> torch.Tensor:
    if how == "mean":
        return a.mean(1)
    if how == "max":
        return a.amax(1)
    if how == "min":
        return a.amin(1)
    raise ValueError(f"params: head_fusion must be one of {', '.join(HEAD_FUSIONS)}, got {how!r}")


def _class_row(r: torch.Tensor, grid) -> torch.Tensor:
    """(B, T, T) relevance -> (B, h, w): the class token's row over the patches (the mean row without one)."""
    row = r[:, 0] if grid.prefix > 0 else r.mean(1)
    return row[:, grid.prefix :].reshape(r.shape[0], grid.height, grid.width)


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
        why = applies(ctx.bundle)
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
            a = 0.5 * _fuse(a.detach().float(), params["head_fusion"]) + 0.5 * eye
            a = a / a.sum(-1, keepdim=True)
            r = a @ r
        return Attribution(_class_row(r, ctx.bundle.token_grid))


class Chefer(TransformerMethod):
    info = vit_info(
        "chefer",
        "Chefer relevance",
        explanation="Attention weighted by the class score's gradient, its positive part averaged over heads, and\n"
        "propagated through the blocks (R ← R + Ā·R): where the class token's evidence comes from.",
        citation="Chefer, Gur & Wolf, Generic Attention-model Explainability for Interpreting Bi-Modal and "
        "Encoder-Decoder Transformers, ICCV 2021",
        units="attention relevance",
    )

    grad = True

    def attribute(self, ctx, x, params):
        cap, score, attentions, start = self._attentions(ctx, x, params)
        grads = torch.autograd.grad(score.sum(), attentions[start:])
        r = torch.eye(cap.tokens, device=x.device).expand(x.shape[0], -1, -1)
        for a, g in zip(attentions[start:], grads):
            cam = (g.detach().float() * a.detach().float()).clamp(min=0).mean(1)
            r = r + cam @ r
        return Attribution(_class_row(r, ctx.bundle.token_grid))


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


def logit_lens(bundle) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's final norm, pooling and head as a function of one block's tokens (B, T, C) -> logits.

    Known: Hugging Face ViT, DeiT (with or without its teacher head), DINOv2 (with registers), CLIP-vision
    classifiers, and timm ViTs (``norm`` then ``forward_head``). ValueError for any other model."""
    net = _unwrap(bundle.model)
    name = type(net).__name__
    if name == "ViTForImageClassification":
        return lambda z: net.classifier(net.vit.layernorm(z)[:, 0])
    if name == "DeiTForImageClassification":
        return lambda z: net.classifier(net.deit.layernorm(z)[:, 0])
    if name == "DeiTForImageClassificationWithTeacher":

        def deit_teacher(z):
            z = net.deit.layernorm(z)
            return (net.cls_classifier(z[:, 0]) + net.distillation_classifier(z[:, 1])) / 2

        return deit_teacher
    if name in ("Dinov2ForImageClassification", "Dinov2WithRegistersForImageClassification"):
        base = net.dinov2 if hasattr(net, "dinov2") else net.dinov2_with_registers
        skip = 1 + int(getattr(net.config, "num_register_tokens", 0) or 0)

        def dinov2(z):
            z = base.layernorm(z)
            return net.classifier(torch.cat([z[:, 0], z[:, skip:].mean(1)], dim=1))

        return dinov2
    if name == "CLIPForImageClassification":
        return lambda z: net.classifier(z[:, 1:].mean(1))
    if hasattr(net, "forward_head") and hasattr(net, "norm"):  # timm VisionTransformer
        return lambda z: net.forward_head(net.norm(z))
    raise ValueError(f"method: legrad does not know how {name} pools its tokens into its head")
