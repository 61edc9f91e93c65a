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


def joint_qkv(
    attn: torch.nn.Module, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """diffusers' JointAttnProcessor2_0 up to the attention: the queries, keys and values of the [image, text]
    sequence, (B, heads, image + text tokens, d), with the layer's query/key norms applied."""
    query, key, value = (heads_view(p(hidden_states), attn.heads) for p in (attn.to_q, attn.to_k, attn.to_v))
    query, key = norm_qk(attn, query, key)
    eq, ek, ev = (
        heads_view(p(encoder_hidden_states), attn.heads) for p in (attn.add_q_proj, attn.add_k_proj, attn.add_v_proj)
    )
    if attn.norm_added_q is not None:
        eq = attn.norm_added_q(eq)
    if attn.norm_added_k is not None:
        ek = attn.norm_added_k(ek)
    return torch.cat([query, eq], dim=2), torch.cat([key, ek], dim=2), torch.cat([value, ev], dim=2)


def joint_output(attn: torch.nn.Module, out: torch.Tensor, n_img: int) -> tuple[torch.Tensor, torch.Tensor]:
    """diffusers' JointAttnProcessor2_0 after the attention: ``out`` (B, heads, S, d) split into the image and
    the text stream, each through its output projection (none for the text of a ``context_pre_only`` block)."""
    out = out.transpose(1, 2).reshape(out.shape[0], -1, attn.heads * out.shape[-1])
    hidden_states, encoder_hidden_states = out[:, :n_img], out[:, n_img:]
    if not attn.context_pre_only:
        encoder_hidden_states = attn.to_add_out(encoder_hidden_states)
    return attn.to_out[1](attn.to_out[0](hidden_states)), encoder_hidden_states


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
        n_img = hidden_states.shape[1]
        query, key, value = joint_qkv(attn, hidden_states, encoder_hidden_states)
        text = (n_img, encoder_hidden_states.shape[1])
        out, probs = attend(self.tracer, query, key, value, mask=None, rows=slice(0, n_img), text=text)
        self.tracer.store(self.layer, probs, hw, restricted=True)
        return joint_output(attn, out.to(query.dtype), n_img)

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
