"""Joint attention of SD3 / SD3.5 (Esser et al. 2024): [image, text] tokens attend to each other.

The recorded block is the image-query → text-key block of the softmax over the *full* key set (image +
text), so that it sums with the image block to one.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.models.attention_processor import JointAttnProcessor2_0

from glimpse.attention.recorders.common import Recorder, attend, heads_view, joint_text_block, norm_qk


def is_sd3_joint(module: torch.nn.Module, layer: str) -> bool:
    """A joint-attention layer: ``.attn`` with the text stream's own projections."""
    return layer.endswith(".attn") and getattr(module, "add_k_proj", None) is not None


class SD3JointRecorder(Recorder):
    """Wraps JointAttnProcessor2_0 ([image, text]); records the image→text block of the joint softmax."""

    records = staticmethod(is_sd3_joint)

    def __call__(
        self,
        attn: torch.nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if (
            encoder_hidden_states is not None
            and type(self.original) is JointAttnProcessor2_0
            and not args
            and not kwargs
        ):
            hw = self.tracer.wants(hidden_states.shape[1])
            if hw is None:
                return self.original(attn, hidden_states, encoder_hidden_states, attention_mask)
            return self._fused(attn, hidden_states, encoder_hidden_states, hw)
        out = self.original(attn, hidden_states, encoder_hidden_states, attention_mask, *args, **kwargs)
        if encoder_hidden_states is not None:
            with torch.no_grad():
                self._record(attn, hidden_states, encoder_hidden_states)
        return out

    def _fused(self, attn, hidden_states, encoder_hidden_states, hw) -> tuple[torch.Tensor, torch.Tensor]:
        """diffusers' JointAttnProcessor2_0, step for step ([image, text]), its SDPA call also giving the block."""
        residual = hidden_states
        batch_size = hidden_states.shape[0]
        query, key, value = (heads_view(p(hidden_states), attn.heads) for p in (attn.to_q, attn.to_k, attn.to_v))
        head_dim = query.shape[-1]
        query, key = norm_qk(attn, query, key)
        eq, ek, ev = (
            heads_view(p(encoder_hidden_states), attn.heads)
            for p in (attn.add_q_proj, attn.add_k_proj, attn.add_v_proj)
        )
        if attn.norm_added_q is not None:
            eq = attn.norm_added_q(eq)
        if attn.norm_added_k is not None:
            ek = attn.norm_added_k(ek)
        n_img = residual.shape[1]
        query, key = torch.cat([query, eq], dim=2), torch.cat([key, ek], dim=2)
        value = torch.cat([value, ev], dim=2)
        out, probs = attend(self.tracer, query, key, value, mask=None, rows=slice(0, n_img), text=(n_img, ev.shape[2]))
        self.tracer.store(self.layer, probs, hw, restricted=True)
        hidden_states = out.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = hidden_states.to(query.dtype)
        hidden_states, encoder_hidden_states = hidden_states[:, :n_img], hidden_states[:, n_img:]
        if not attn.context_pre_only:
            encoder_hidden_states = attn.to_add_out(encoder_hidden_states)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        return hidden_states, encoder_hidden_states

    def _record(self, attn, x, c) -> None:
        hw = self.tracer.wants(x.shape[1])
        if hw is None:
            return
        b = self.tracer.cond_index(x.shape[0])
        x, c = x[b : b + 1], c[b : b + 1]
        q, k = heads_view(attn.to_q(x), attn.heads), heads_view(attn.to_k(x), attn.heads)
        kt = heads_view(attn.add_k_proj(c), attn.heads)
        q, k = norm_qk(attn, q, k)
        if attn.norm_added_k is not None:
            kt = attn.norm_added_k(kt)
        probs = joint_text_block(q[0], k[0], kt[0], q.shape[-1] ** -0.5)
        self.tracer.store(self.layer, probs.transpose(-1, -2), hw)
