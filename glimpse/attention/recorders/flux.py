"""Joint attention of Flux (Black Forest Labs 2024): [text, image] tokens with RoPE on both.

Double-stream blocks get text and image separately; single-stream blocks get the concatenated sequence,
whose first ``tracer.text_len`` tokens are text. The recorded block is the image-query → text-key block
of the softmax over the full key set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from glimpse.attention.recorders.common import Recorder, Tracer, attend, joint_text_block


def is_flux_attn(module: torch.nn.Module, layer: str) -> bool:
    """A Flux attention layer (double- or single-stream)."""
    return layer.endswith(".attn") and hasattr(module, "norm_q") and hasattr(module, "head_dim")


def _text_len(tracer, encoder_hidden_states: torch.Tensor | None) -> int:
    text_len = encoder_hidden_states.shape[1] if encoder_hidden_states is not None else tracer.text_len
    if text_len is None:
        raise ValueError("text_len: required to split Flux single-stream blocks into text and image")
    return text_len


class FluxJointRecorder(Recorder):
    """Wraps FluxAttnProcessor ([text, image], RoPE); records the image→text block of the joint softmax."""

    records = staticmethod(is_flux_attn)

    def __init__(self, tracer: Tracer, layer: str, original: Callable) -> None:
        super().__init__(tracer, layer, original)
        self.fast = _fast_flux(original)  # the processor stays the same while the recorder is installed

    def __call__(
        self,
        attn: torch.nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: Any = None,
        **kwargs: Any,
    ) -> Any:
        if self.fast and not kwargs:
            text_len = _text_len(self.tracer, encoder_hidden_states)
            n_img = hidden_states.shape[1] - (0 if encoder_hidden_states is not None else text_len)
            hw = self.tracer.wants(n_img)
            if hw is None:
                return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
            return self._fused(
                attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb, text_len, hw
            )
        out = self.original(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb, **kwargs)
        with torch.no_grad():
            self._record(attn, hidden_states, encoder_hidden_states, image_rotary_emb)
        return out

    def _fused(self, attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb, text_len, hw):
        """diffusers' FluxAttnProcessor (native backend), step for step ([text, image]); SDPA also gives the block."""
        from diffusers.models.embeddings import apply_rotary_emb
        from diffusers.models.transformers.transformer_flux import _get_qkv_projections

        query, key, value, eq, ek, ev = _get_qkv_projections(attn, hidden_states, encoder_hidden_states)
        query = query.unflatten(-1, (-1, attn.head_dim))
        key = key.unflatten(-1, (-1, attn.head_dim))
        value = value.unflatten(-1, (-1, attn.head_dim))
        query, key = attn.norm_q(query), attn.norm_k(key)
        if attn.added_kv_proj_dim is not None:
            eq, ek = eq.unflatten(-1, (-1, attn.head_dim)), ek.unflatten(-1, (-1, attn.head_dim))
            ev = ev.unflatten(-1, (-1, attn.head_dim))
            eq, ek = attn.norm_added_q(eq), attn.norm_added_k(ek)
            query, key = torch.cat([eq, query], dim=1), torch.cat([ek, key], dim=1)
            value = torch.cat([ev, value], dim=1)
        if image_rotary_emb is not None:
            query = apply_rotary_emb(query, image_rotary_emb, sequence_dim=1)
            key = apply_rotary_emb(key, image_rotary_emb, sequence_dim=1)
        q, k, v = (t.permute(0, 2, 1, 3) for t in (query, key, value))  # (B, H, S, d), as the native backend does
        mask = attention_mask
        if mask is not None and mask.ndim == 2:  # the native backend's (B, S_k) -> (B, 1, 1, S_k)
            mask = mask[:, None, None]
        out, probs = attend(self.tracer, q, k, v, mask=mask, rows=slice(text_len, None), text=(0, text_len))
        self.tracer.store(self.layer, probs, hw, restricted=True)
        hidden_states = out.permute(0, 2, 1, 3).flatten(2, 3).to(query.dtype)
        if encoder_hidden_states is not None:
            encoder_hidden_states, hidden_states = hidden_states.split_with_sizes(
                [encoder_hidden_states.shape[1], hidden_states.shape[1] - encoder_hidden_states.shape[1]], dim=1
            )
            hidden_states = attn.to_out[0](hidden_states.contiguous())
            hidden_states = attn.to_out[1](hidden_states)
            encoder_hidden_states = attn.to_add_out(encoder_hidden_states.contiguous())
            return hidden_states, encoder_hidden_states
        return hidden_states

    #: per stream (image, text): the fused QKV projection, the Q and K projections and their norms
    _PROJECTIONS = {
        False: ("to_qkv", "to_q", "to_k", "norm_q", "norm_k"),
        True: ("to_added_qkv", "add_q_proj", "add_k_proj", "norm_added_q", "norm_added_k"),
    }

    @classmethod
    def _project(cls, attn, x: torch.Tensor, added: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Normed (1, S, H, d) queries and keys of one stream (the text stream's own projections when ``added``)."""
        fused, to_q, to_k, norm_q, norm_k = cls._PROJECTIONS[added]
        if getattr(attn, "fused_projections", False) and hasattr(attn, fused):
            q, k, _ = getattr(attn, fused)(x).chunk(3, dim=-1)
        else:
            q, k = getattr(attn, to_q)(x), getattr(attn, to_k)(x)
        q, k = q.unflatten(-1, (-1, attn.head_dim)), k.unflatten(-1, (-1, attn.head_dim))
        return getattr(attn, norm_q)(q), getattr(attn, norm_k)(k)

    def _record(self, attn, x, c, rotary) -> None:
        from diffusers.models.embeddings import apply_rotary_emb

        b = self.tracer.cond_index(x.shape[0])
        x = x[b : b + 1]
        text_len = _text_len(self.tracer, c)
        if c is not None:
            hw = self.tracer.wants(x.shape[1])
            if hw is None:
                return
            q_t, k_t = self._project(attn, c[b : b + 1], added=True)
            q_i, k_i = self._project(attn, x, added=False)
            q, k = torch.cat([q_t, q_i], dim=1), torch.cat([k_t, k_i], dim=1)
        else:
            hw = self.tracer.wants(x.shape[1] - text_len)
            if hw is None:
                return
            q, k = self._project(attn, x, added=False)
        if rotary is not None:
            q = apply_rotary_emb(q, rotary, sequence_dim=1)
            k = apply_rotary_emb(k, rotary, sequence_dim=1)
        q, k = q[0].transpose(0, 1), k[0].transpose(0, 1)  # (H, S, d)
        probs = joint_text_block(q[:, text_len:], k[:, text_len:], k[:, :text_len], q.shape[-1] ** -0.5)
        self.tracer.store(self.layer, probs.transpose(-1, -2), hw)


def _fast_flux(processor: Any) -> bool:
    """The stock FluxAttnProcessor on the native SDPA backend (the case the fused recorder replicates)."""
    from diffusers.models.transformers.transformer_flux import FluxAttnProcessor

    return (
        type(processor) is FluxAttnProcessor
        and getattr(processor, "_attention_backend", None) is None
        and getattr(processor, "_parallel_config", None) is None
    )
