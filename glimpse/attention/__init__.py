"""Cross-attention maps of text-to-image diffusion models (DAAM and its transformer extensions).

Record with :func:`generate_with_attention` (or :class:`AttentionTracer` around any denoiser call),
aggregate with :func:`word_maps`, :func:`token_maps` and :func:`word_mass_over_time`. By default the
recorded layers and the aggregation grid are DAAM's (:mod:`glimpse.attention.daam`, :data:`LAYER_SETS`).
"""

from glimpse.attention.aggregate import token_maps, word_maps, word_mass_over_time
from glimpse.attention.daam import LAYER_SETS
from glimpse.attention.generate import PromptTokens, generate_with_attention, prompt_tokens
from glimpse.attention.trace import AttentionTrace, GenerationResult
from glimpse.attention.tracer import RECORDERS, AttentionTracer, joint_text_block

__all__ = [
    "LAYER_SETS",
    "RECORDERS",
    "AttentionTrace",
    "AttentionTracer",
    "GenerationResult",
    "PromptTokens",
    "generate_with_attention",
    "joint_text_block",
    "prompt_tokens",
    "token_maps",
    "word_mass_over_time",
    "word_maps",
]
