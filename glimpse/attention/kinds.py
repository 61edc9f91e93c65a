"""The denoiser architectures the cross-attention lens traces: one small adapter per kind.

An adapter knows what tracing one kind of diffusers pipeline needs beyond loading it: where its denoiser
is, which attention layers are traced and its recorder (:mod:`glimpse.attention.recorders`), DAAM's layer
set, its tokenizer and text length, the batch layout of guidance, the pipeline's extra call options and
its default steps and guidance scale (the values the model cards recommend). Words group by the
tokenizer's character offsets for every kind (:func:`glimpse.attention.generate.prompt_tokens`).

A new architecture is one adapter class here, one recorder file and one line in :data:`KINDS`.

>>> list(KINDS)
['unet', 'pixart', 'sd3', 'flux']
>>> [KINDS[k].cfg(3.5) for k in KINDS]  # Flux is guidance-distilled: one branch, no CFG halves
[True, True, True, False]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from glimpse.attention.daam import DAAM_BLOCKS, daam_grid, daam_skipped_sides
from glimpse.attention.recorders.common import Recorder
from glimpse.attention.recorders.cross import CrossAttentionRecorder
from glimpse.attention.recorders.flux import FluxJointRecorder
from glimpse.attention.recorders.sd3 import SD3JointRecorder


@dataclass(frozen=True)
class LayerPlan:
    """Which traced layers :func:`glimpse.attention.generate_with_attention` records, and on which grid."""

    blocks: tuple[str, ...] | None = None  # layer-path prefixes; None: every traced layer
    exclude: tuple[int, ...] = ()  # map heights never recorded
    grid: int | None = None  # side of the aggregation grid; None: straight to the output size


class Kind:
    """A transformer denoiser at ``pipe.transformer`` whose maps use ``pipe.tokenizer``'s tokens.

    Subclasses set the class attributes and override what differs.
    """

    name: ClassVar[str]
    #: denoiser class names this adapter is chosen for (also named in "not supported" errors)
    denoiser_classes: ClassVar[tuple[str, ...]]
    recorder: ClassVar[type[Recorder]]
    default_steps: ClassVar[int]
    default_guidance: ClassVar[float]
    #: guidance-distilled: the scale is an input of the denoiser and the batch has a single branch
    distilled: ClassVar[bool] = False
    #: keep each head's sum over all steps (what DAAM's per-head clamp needs) unless heads are kept anyway
    head_sums: ClassVar[bool] = False
    #: ConceptAttention (:mod:`glimpse.attention.concept`): the denoiser's list of joint blocks whose text stream
    #: carries the concept tokens, or None with the reason in ``no_concepts``
    concept_blocks: ClassVar[str | None] = None
    no_concepts: ClassVar[str] = "ConceptAttention needs joint-attention (MMDiT) blocks with a text stream"

    def denoiser(self, pipe: Any) -> torch.nn.Module:
        return pipe.transformer

    def detects(self, pipe: Any) -> bool:
        return type(getattr(pipe, "transformer", None)).__name__ in self.denoiser_classes

    def traces(self, module: torch.nn.Module, layer: str) -> bool:
        """Whether the attention layer at path ``layer`` is recorded: the layers its recorder stands in for."""
        return self.recorder.records(module, layer)

    def tokenizer(self, pipe: Any) -> Any:
        """The tokenizer whose tokens the traced layers attend to."""
        return pipe.tokenizer

    def max_tokens(self, pipe: Any) -> int:
        """The text encoder's limit in tokens, special tokens included."""
        return int(self.tokenizer(pipe).model_max_length)

    def text_len(self, max_tokens: int) -> int | None:
        """Text tokens at the front of a concatenated sequence, where a recorder must split one."""
        return None

    def call_kwargs(self, max_tokens: int) -> dict[str, Any]:
        """Extra keyword arguments of the pipeline call."""
        return {}

    def cfg(self, guidance: float) -> bool:
        """Whether the denoiser's batch is [unconditional, conditional] halves at this guidance scale."""
        return not self.distilled and guidance > 1.0

    def resolution(self, pipe: Any) -> int:
        """Side of the default image in pixels."""
        return int(self.denoiser(pipe).config.sample_size) * _vae_scale(pipe)

    def layer_plan(self, pipe: Any, side: int, layers: str, resolutions: Sequence[int] | None = None) -> LayerPlan:
        """DAAM's layer set (``layers="daam"``) or every traced layer (``"all"``); see :mod:`.daam`."""
        return LayerPlan()

    def text_states(self, pipe: Any, texts: list[str], max_tokens: int) -> torch.Tensor:
        """The conditional text states the denoiser's text stream starts from, ``(len(texts), L, D)``, for
        ConceptAttention's concept tokens: the pipeline's own prompt encoding (the embedded word-level models:
        ``pipe.conditioning(texts)["encoder_hidden_states"]``)."""
        if hasattr(pipe, "conditioning"):  # the embedded pipelines: the denoiser's text inputs by keyword
            return pipe.conditioning(list(texts))["encoder_hidden_states"]
        if hasattr(pipe, "tokenize_words"):
            return pipe.encode_prompt(list(texts))
        raise ValueError(f"kind: {self.name!r} has no text stream for concept tokens; {self.no_concepts}")


def _vae_scale(pipe: Any) -> int:
    return int(getattr(pipe, "vae_scale_factor", 1) or 1)


class UNet(Kind):
    """Stable Diffusion 1.x / 2.x / XL and the embedded shapes model: ``attn2`` cross-attention of a UNet."""

    name = "unet"
    denoiser_classes = ("UNet2DConditionModel",)
    recorder = CrossAttentionRecorder
    default_steps, default_guidance = 30, 7.5
    head_sums = True
    no_concepts = (
        "ConceptAttention needs joint-attention (MMDiT) blocks with a text stream for the concept tokens to pass "
        "through; a UNet's cross-attention reads fixed text states and has none (use SD3 or Flux)"
    )

    def denoiser(self, pipe: Any) -> torch.nn.Module:
        return pipe.unet

    def detects(self, pipe: Any) -> bool:
        return getattr(pipe, "unet", None) is not None

    def layer_plan(self, pipe: Any, side: int, layers: str, resolutions: Sequence[int] | None = None) -> LayerPlan:
        """DAAM 0.2.0: down- and up-block layers, aggregated on its grid, without the factor-8 maps.

        A pixel-space model (the embedded one: no VAE) is aggregated on its image grid, every resolution kept.
        """
        latent = getattr(pipe, "vae", None) is not None
        grid = daam_grid(side) if latent else side
        if layers != "daam":
            return LayerPlan(grid=grid)
        exclude = daam_skipped_sides(grid) if latent and resolutions is None else ()
        return LayerPlan(DAAM_BLOCKS, exclude, grid)


class PixArt(Kind):
    """PixArt-α / Σ: ``attn2`` cross-attention of a DiT over T5 tokens, respecting the text mask."""

    name = "pixart"
    denoiser_classes = ("PixArtTransformer2DModel",)
    recorder = CrossAttentionRecorder
    default_steps, default_guidance = 20, 4.5
    no_concepts = (
        "ConceptAttention needs joint-attention (MMDiT) blocks with a text stream for the concept tokens to pass "
        "through; PixArt's text enters through cross-attention only and is never updated (use SD3 or Flux)"
    )

    def max_tokens(self, pipe: Any) -> int:
        # the pipelines' default max_sequence_length: PixArt-α 120 T5 tokens, PixArt-Σ 300
        return 300 if "Sigma" in type(pipe).__name__ else 120

    def call_kwargs(self, max_tokens: int) -> dict[str, Any]:
        return {"clean_caption": False}  # caption cleaning needs bs4/ftfy and changes the tokens


class SD3(Kind):
    """SD3 / SD3.5: joint attention over [image, text]; the maps use the (first) CLIP tokenizer's tokens."""

    name = "sd3"
    denoiser_classes = ("SD3Transformer2DModel",)
    recorder = SD3JointRecorder
    default_steps, default_guidance = 28, 7.0
    concept_blocks = "transformer_blocks"

    def text_states(self, pipe: Any, texts: list[str], max_tokens: int) -> torch.Tensor:
        if hasattr(pipe, "tokenize_words"):
            return super().text_states(pipe, texts, max_tokens)
        # [CLIP-L ‖ CLIP-G (77 tokens, padded to T5's width); T5], the pipeline's default T5 length
        return pipe.encode_prompt(
            prompt=list(texts), prompt_2=None, prompt_3=None, device=pipe._execution_device,
            do_classifier_free_guidance=False,
        )[0]  # fmt: skip


class Flux(Kind):
    """Flux: joint attention over [T5 text, image] with RoPE; guidance-distilled (no CFG halves)."""

    name = "flux"
    denoiser_classes = ("FluxTransformer2DModel",)
    recorder = FluxJointRecorder
    default_steps, default_guidance = 28, 3.5
    distilled = True
    concept_blocks = "transformer_blocks"  # the double-stream blocks (single-stream ones have no text stream)

    def text_states(self, pipe: Any, texts: list[str], max_tokens: int) -> torch.Tensor:
        return pipe.encode_prompt(
            prompt=list(texts), prompt_2=None, device=pipe._execution_device, max_sequence_length=max_tokens
        )[0]

    def tokenizer(self, pipe: Any) -> Any:
        return pipe.tokenizer_2  # joint attention is conditioned on T5 only

    def max_tokens(self, pipe: Any) -> int:
        return 512

    def text_len(self, max_tokens: int) -> int | None:
        return max_tokens  # single-stream blocks: the padded T5 sequence comes first

    def call_kwargs(self, max_tokens: int) -> dict[str, Any]:
        return {"max_sequence_length": max_tokens}

    def resolution(self, pipe: Any) -> int:
        return int(getattr(pipe, "default_sample_size", 128)) * _vae_scale(pipe)


#: kind name -> adapter, in detection order
KINDS: dict[str, Kind] = {k.name: k for k in (UNet(), PixArt(), SD3(), Flux())}


def kind_of(name: str | Kind) -> Kind:
    """The adapter named ``name`` (an adapter passes through); ValueError listing the known kinds."""
    if isinstance(name, Kind):
        return name
    if name not in KINDS:
        raise ValueError(f"kind: unknown {name!r}; known: {', '.join(KINDS)}")
    return KINDS[name]


def detect(pipe: Any) -> Kind | None:
    """The adapter of ``pipe``'s denoiser, or None when no kind is supported."""
    return next((k for k in KINDS.values() if k.detects(pipe)), None)
