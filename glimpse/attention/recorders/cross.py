"""Cross-attention (UNet ``attn2``, PixArt ``attn2``): softmax(Q Kᵀ/√d + mask) over the text keys.

Q comes from the image positions, K from the text tokens (Vaswani et al. 2017; DAAM, Tang et al. 2023);
the text mask (PixArt) is the additive bias the layer itself uses.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.models.attention_processor import AttnProcessor2_0

from glimpse.attention.recorders.common import Recorder, attend, heads_view, norm_qk


def is_cross(module: torch.nn.Module, layer: str) -> bool:
    """A cross-attention layer: diffusers' ``attn2`` attending to the text."""
    return layer.endswith("attn2") and bool(getattr(module, "is_cross_attention", False))


class CrossAttentionRecorder(Recorder):
    """Wraps a cross-attention processor; records softmax(QKᵀ/√d + mask) of the conditional sample.

    The stock ``AttnProcessor2_0`` is replaced by its own steps with the recording fused into its SDPA call;
    any other processor runs untouched and the probabilities are recomputed from its projections.
    """

    records = staticmethod(is_cross)

    def __call__(
        self,
        attn: torch.nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        if encoder_hidden_states is not None and type(self.original) is AttnProcessor2_0 and not args and not kwargs:
            n = hidden_states.shape[1] if hidden_states.ndim == 3 else hidden_states.shape[2] * hidden_states.shape[3]
            hw = self.tracer.wants(n)
            if hw is None:  # a resolution that is not recorded: the stock processor, nothing else
                return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
            return self._fused(attn, hidden_states, encoder_hidden_states, attention_mask, temb, hw)
        if temb is not None:  # not every processor takes temb; pass it only when it is used
            kwargs["temb"] = temb
        out = self.original(attn, hidden_states, encoder_hidden_states, attention_mask, *args, **kwargs)
        if encoder_hidden_states is not None:
            with torch.no_grad():
                self._record(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        return out

    def _fused(self, attn, hidden_states, encoder_hidden_states, attention_mask, temb, hw) -> torch.Tensor:
        """diffusers' AttnProcessor2_0, step for step, its SDPA call also giving the block (:func:`attend`)."""
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = encoder_hidden_states.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        query, key, value = (heads_view(t, attn.heads) for t in (query, key, value))
        head_dim = query.shape[-1]
        query, key = norm_qk(attn, query, key)
        out, probs = attend(
            self.tracer, query, key, value, mask=attention_mask, rows=slice(None), text=(0, sequence_length)
        )
        self.tracer.store(self.layer, probs, hw, restricted=True)
        hidden_states = out.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = hidden_states.to(query.dtype)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor

    def _record(self, attn, hidden_states, context, mask, temb) -> None:
        x = hidden_states
        if attn.spatial_norm is not None:
            x = attn.spatial_norm(x, temb)
        if x.ndim == 4:
            x = x.flatten(2).transpose(1, 2)
        hw = self.tracer.wants(x.shape[1])
        if hw is None:
            return
        b = self.tracer.cond_index(x.shape[0])
        x, c = x[b : b + 1], context[b : b + 1]
        if attn.group_norm is not None:
            x = attn.group_norm(x.transpose(1, 2)).transpose(1, 2)
        if attn.norm_cross:
            c = attn.norm_encoder_hidden_states(c)
        q, k = norm_qk(attn, heads_view(attn.to_q(x), attn.heads), heads_view(attn.to_k(c), attn.heads))
        scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * (q.shape[-1] ** -0.5)
        if mask is not None:
            # UNet/PixArt pass the text mask as an additive bias (B, 1, L)
            scores = scores + mask[b : b + 1].float().reshape(1, 1, 1, -1)
        self.tracer.store(self.layer, scores.softmax(-1)[0].transpose(-1, -2), hw)
