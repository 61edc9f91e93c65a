"""Cross-attention maps of text-to-image diffusion models (DAAM and its transformer extensions).

Record with :func:`generate_with_attention` (or :func:`trace_denoiser` / :class:`AttentionTracer` around any
denoiser calls), aggregate with :func:`word_maps`, :func:`token_maps` and :func:`word_mass_over_time`. ConceptAttention's maps of
SD3 / Flux (:func:`generate_with_concepts`, :mod:`glimpse.attention.concept`) are a trace of the same shape. By default the
recorded layers and the aggregation grid are DAAM's (:mod:`glimpse.attention.daam`, :data:`LAYER_SETS`).
What differs between denoiser architectures is one adapter per kind (:data:`KINDS`, :mod:`glimpse.attention.kinds`)
and one recorder (:mod:`glimpse.attention.recorders`).
"""

from glimpse.attention.aggregate import token_maps, word_maps, word_mass_over_time
from glimpse.attention.concept import ConceptGeneration, generate_with_concepts
from glimpse.attention.daam import LAYER_SETS
from glimpse.attention.generate import (
    Denoised,
    PromptTokens,
    generate_with_attention,
    prompt_tokens,
    trace_denoiser,
    word_spans,
)
from glimpse.attention.kinds import KINDS, Kind, detect, kind_of
from glimpse.attention.recorders.common import joint_text_block
from glimpse.attention.trace import AttentionTrace, GenerationResult
from glimpse.attention.tracer import AttentionTracer

__all__ = [
    "KINDS",
    "LAYER_SETS",
    "AttentionTrace",
    "AttentionTracer",
    "ConceptGeneration",
    "Denoised",
    "GenerationResult",
    "Kind",
    "PromptTokens",
    "detect",
    "generate_with_attention",
    "generate_with_concepts",
    "joint_text_block",
    "kind_of",
    "prompt_tokens",
    "token_maps",
    "trace_denoiser",
    "word_mass_over_time",
    "word_maps",
    "word_spans",
]
