"""Record cross-attention probabilities of a diffusers denoiser while it generates.

What is recorded, for the conditional sample of a classifier-free-guidance batch:

* cross-attention (UNet ``attn2``, PixArt ``attn2``): P = softmax(Q Kᵀ / √d + mask) over the text keys,
  with Q from the image positions and K from the text tokens (Vaswani et al. 2017; DAAM, Tang et al. 2023);
* joint attention (SD3 / SD3.5: [image, text]; Flux: [text, image], RoPE on both, Esser et al. 2024):
  the image-query → text-key block of softmax over the *full* key set (image + text), so that it sums with
  the image block to one.

Two ways to get it, neither forms an attention matrix:

* fused (the stock processors ``AttnProcessor2_0``, ``JointAttnProcessor2_0``, ``FluxAttnProcessor``): the
  recorder runs the processor's own steps but appends one-hot probe columns for the kept text keys to V
  (and zero columns to Q and K, keeping the fused kernel), so the single SDPA call returns [softmax(QKᵀ/√d) V | P[:, kept text keys]]: the layer's output
  (equal up to float rounding) and the probabilities, normalised over the full key set, at the cost of
  K extra value columns (:func:`probe_values`).
* wrapped (any other processor, e.g. a user's custom one): the original processor computes the output
  untouched; the recorder recomputes Q and K of the conditional sample from the layer's projections
  (with its q/k norms and RoPE) and, for joint attention,
  P_it = exp(q_i·k_t/√d − lse_i),  lse_i = logaddexp(logsumexp_j∈image(q_i·k_j/√d), logsumexp_t(q_i·k_t/√d)),
  with the image part of the normaliser accumulated in query chunks (:func:`joint_text_block`).

Heads are averaged on the fly unless ``heads=True``; only the kept text positions and the requested map
resolutions are stored, as float16 on the CPU. Memory is therefore T × K × Σ h·w × 2 bytes. With
``head_sums=True`` the tracer also keeps, per layer, every head's probabilities summed over all calls,
Σ_t P^{ℓ,η}_t (float32, H × K × h·w per layer, whatever T): what DAAM's clamp per (layer, head) needs
without keeping the heads of every step.

Processors are swapped inside one ``with`` under the pipeline's lock and restored in ``finally``
(diffusers' ``set_attn_processor`` pops from the dict it is given, so a copy is passed).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor2_0, JointAttnProcessor2_0

#: queries per chunk are chosen so one chunk of image-key scores stays under this many float32 values
_CHUNK_VALUES = 8 * 1024 * 1024


def grid_shape(n: int, image_hw: tuple[int, int]) -> tuple[int, int]:
    """The (h, w) token grid with h·w = n and the aspect ratio of ``image_hw``."""
    H, W = image_hw
    guess = max(1, round(math.sqrt(n * H / W)))
    for h in sorted(range(max(1, guess - 2), guess + 3), key=lambda x: abs(x - guess)):
        if n % h == 0:
            return h, n // h
    raise ValueError(f"image_hw: {n} image tokens do not form a grid with aspect {H}x{W}")


def _heads_view(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, S, H·d) -> (B, H, S, d)."""
    return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def _norm_qk(attn, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention module's optional query/key norms (SD3, PixArt-Sigma, ...), as diffusers applies them."""
    if attn.norm_q is not None:
        q = attn.norm_q(q)
    if attn.norm_k is not None:
        k = attn.norm_k(k)
    return q, k


def joint_text_block(
    q_img: torch.Tensor, k_img: torch.Tensor, k_txt: torch.Tensor, scale: float, chunk_values: int = _CHUNK_VALUES
) -> torch.Tensor:
    """Image-query → text-key block of softmax([q_img] [k_img; k_txt]ᵀ · scale) without the full matrix.

    Parameters
    ----------
    q_img, k_img : (H, N, d) image queries and keys; k_txt : (H, L, d) text keys.
    scale : the softmax temperature, 1/√d.

    Returns
    -------
    (H, N, L) float32 probabilities; each row sums with the (never formed) image block to 1.
    """
    q_img, k_img, k_txt = q_img.float(), k_img.float(), k_txt.float()
    s_txt = torch.matmul(q_img, k_txt.transpose(-1, -2)) * scale  # (H, N, L)
    heads, n, _ = q_img.shape
    rows = max(1, chunk_values // max(1, heads * k_img.shape[1]))
    lse_img = torch.empty(heads, n, dtype=torch.float32, device=q_img.device)
    for start in range(0, n, rows):
        block = torch.matmul(q_img[:, start : start + rows], k_img.transpose(-1, -2)) * scale
        lse_img[:, start : start + rows] = torch.logsumexp(block, dim=-1)
    lse = torch.logaddexp(lse_img, torch.logsumexp(s_txt, dim=-1))
    return torch.exp(s_txt - lse.unsqueeze(-1))


def probe_values(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, start: int, positions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Append one-hot "probe" columns to V so that fused attention also returns probabilities.

    With V' = [V | E], E[j, c] = 1 iff key j is text key ``start + positions[c]``, one fused
    scaled-dot-product-attention call gives softmax(QKᵀ/√d) V' = [softmax(QKᵀ/√d) V | P[:, kept text keys]]:
    the layer's output and the recorded probabilities, normalised over the full key set, without forming
    the attention matrix and without recomputing any projection. Q and K get as many zero columns
    (which add exactly nothing to QKᵀ), so all three share one head size, a multiple of 8: the fused
    kernels (flash) need that, and without it PyTorch falls back to the slow, matrix-forming path.
    Call SDPA with ``scale=d ** -0.5`` (d = the original head size).

    query, key, value : (B, H, S, d); returns them widened to (B, H, S, d + K + pad).
    """
    batch, heads, seq, d = value.shape
    k = positions.numel()
    width = -(-(d + k) // 8) * 8 - d
    probe = torch.zeros(seq, width, dtype=value.dtype, device=value.device)
    probe[start + positions, torch.arange(k, device=value.device)] = 1
    value = torch.cat([value, probe.expand(batch, heads, seq, width)], dim=-1)
    query = torch.cat([query, query.new_zeros(*query.shape[:-1], width)], dim=-1)
    key = torch.cat([key, key.new_zeros(*key.shape[:-1], width)], dim=-1)
    return query, key, value


class AttentionTracer:
    """Context manager that records cross-attention maps of ``denoiser`` (see module docstring).

    Parameters
    ----------
    denoiser : the UNet2DConditionModel or transformer of the pipeline.
    kind : "unet" | "pixart" | "sd3" | "flux".
    lock : the pipeline's lock, held from ``__enter__`` to ``__exit__``.
    token_positions : positions in the text sequence to keep (None: all).
    image_hw : (H, W) of the image (any unit): gives the aspect ratio of the token grids.
    cfg : the batch is [unconditional, conditional] halves; record the first conditional sample.
    heads : keep the head axis instead of averaging it.
    resolutions : map heights h to record (None: all).
    exclude_resolutions : map heights h never recorded (DAAM skips the 1/8-latent maps of Stable Diffusion).
    blocks : record only the layers whose path starts with one of these prefixes (None: every layer;
        DAAM: ``("down_blocks.", "up_blocks.")``).
    head_sums : also sum every head's probabilities over all calls (see module docstring; :meth:`sums`).
    text_len : text tokens at the front of the sequence in Flux single-stream blocks (required for Flux).
    """

    def __init__(
        self,
        denoiser: torch.nn.Module,
        kind: str,
        *,
        lock: threading.RLock | None = None,
        token_positions: Sequence[int] | None = None,
        image_hw: tuple[int, int] = (1, 1),
        cfg: bool = True,
        heads: bool = False,
        resolutions: Sequence[int] | None = None,
        exclude_resolutions: Sequence[int] = (),
        blocks: Sequence[str] | None = None,
        head_sums: bool = False,
        text_len: int | None = None,
    ) -> None:
        if kind not in RECORDERS:
            raise ValueError(f"kind: unknown {kind!r}; known: {', '.join(RECORDERS)}")
        self.denoiser = denoiser
        self.kind = kind
        self.lock = lock
        self.token_positions = None if token_positions is None else torch.as_tensor(list(token_positions))
        self.image_hw = image_hw
        self.cfg = cfg
        self.heads = heads
        self.resolutions = None if resolutions is None else frozenset(int(r) for r in resolutions)
        self.exclude_resolutions = frozenset(int(r) for r in exclude_resolutions)
        if blocks is not None and (isinstance(blocks, str) or not len(blocks)):
            raise ValueError(f"blocks: {blocks!r} must be a non-empty sequence of layer-path prefixes")
        self.blocks = None if blocks is None else tuple(blocks)
        self.head_sums = head_sums
        self.text_len = text_len
        self.records: dict[str, list[torch.Tensor]] = {}
        self._sums: dict[str, torch.Tensor] = {}
        self._grids: dict[str, tuple[int, int]] = {}
        self.seen_resolutions: set[int] = set()
        self._saved: dict[str, Any] | None = None

    # ------------------------------------------------------------------ install / restore
    def __enter__(self) -> AttentionTracer:
        if self.lock is not None:
            self.lock.acquire()
        try:
            self._saved = dict(self.denoiser.attn_processors)
            self._sums.clear()
            select, recorder = RECORDERS[self.kind]
            new: dict[str, Any] = {}
            for name, processor in self._saved.items():
                layer = name.removesuffix(".processor")
                if select(self.denoiser.get_submodule(layer), layer) and self._in_blocks(layer):
                    new[name] = recorder(self, layer, processor)
                    self.records[layer] = []
                else:
                    new[name] = processor
            if not self.records:
                where = "" if self.blocks is None else f" in blocks {list(self.blocks)}"
                raise ValueError(f"denoiser: no cross-attention layers found{where} for kind {self.kind!r}")
            self.denoiser.set_attn_processor(new)
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, *exc: object) -> bool:
        try:
            if self._saved is not None:
                self.denoiser.set_attn_processor(dict(self._saved))
        finally:
            self._release()
        return False

    def _release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    # ------------------------------------------------------------------ recording
    def _in_blocks(self, layer: str) -> bool:
        return self.blocks is None or layer.startswith(self.blocks)

    def cond_index(self, batch: int) -> int:
        return batch // 2 if self.cfg else 0

    def wants(self, n_image_tokens: int) -> tuple[int, int] | None:
        """Grid (h, w) of a layer with this many image tokens, or None when its resolution is not wanted."""
        h, w = grid_shape(n_image_tokens, self.image_hw)
        self.seen_resolutions.add(h)
        if (self.resolutions is not None and h not in self.resolutions) or h in self.exclude_resolutions:
            return None
        return h, w

    def kept(self, text_len: int, device: torch.device) -> torch.Tensor:
        """Positions of the kept text tokens among ``text_len`` text keys."""
        if self.token_positions is None:
            return torch.arange(text_len, device=device)
        return self.token_positions.to(device)

    def store(self, layer: str, probs: torch.Tensor, hw: tuple[int, int], *, restricted: bool = False) -> None:
        """probs (heads, N, L) -> kept tokens (unless ``restricted``), heads averaged unless asked, fp16 CPU."""
        if not restricted and self.token_positions is not None:
            probs = probs[..., self.token_positions.to(probs.device)]
        if self.head_sums:
            # float32 on the recording device: one add per call, moved to the CPU once in sums()
            total = self._sums.get(layer)
            # (a copy: probs may be a view into the layer's SDPA output, which must not be kept alive)
            self._sums[layer] = probs.to(torch.float32, copy=True) if total is None else total + probs.float()
            self._grids[layer] = hw
        if not self.heads:
            probs = probs.mean(0)
        probs = probs.transpose(-1, -2)  # (..., K, N)
        self.records[layer].append(probs.reshape(*probs.shape[:-1], *hw).to("cpu", torch.float16))

    def result(self) -> tuple[tuple[str, ...], tuple[np.ndarray, ...]]:
        """Recorded layers and their maps, (T, K, h, w) or (T, heads, K, h, w) float16 each."""
        layers = tuple(name for name, rec in self.records.items() if rec)
        counts = {len(self.records[name]) for name in layers}
        if len(counts) > 1:
            raise RuntimeError(f"tracer: layers were called unequally often ({sorted(counts)} calls)")
        maps = tuple(torch.stack(self.records[name]).numpy() for name in layers)
        return layers, maps

    def sums(self) -> tuple[np.ndarray, ...] | None:
        """Per recorded layer (order of :meth:`result`): Σ over calls of each head's map, (H, K, h, w) float32.

        None unless the tracer was made with ``head_sums=True``.
        """
        if not self.head_sums:
            return None
        out = []
        for name in self.result()[0]:
            total = self._sums[name].transpose(-1, -2)  # (H, K, N)
            out.append(total.reshape(*total.shape[:-1], *self._grids[name]).to("cpu").numpy())
        return tuple(out)


# ---------------------------------------------------------------------- cross-attention (UNet, PixArt)
def _is_cross(module: torch.nn.Module, layer: str) -> bool:
    return layer.endswith("attn2") and bool(getattr(module, "is_cross_attention", False))


class CrossAttentionRecorder:
    """Wraps a cross-attention processor; records softmax(QKᵀ/√d + mask) of the conditional sample."""

    def __init__(self, tracer: AttentionTracer, layer: str, original: Callable) -> None:
        self.tracer, self.layer, self.original = tracer, layer, original

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
            if hw is not None:
                return self._fused(attn, hidden_states, encoder_hidden_states, attention_mask, temb, hw)
        if temb is not None:  # not every processor takes temb; pass it only when it is used
            kwargs["temb"] = temb
        out = self.original(attn, hidden_states, encoder_hidden_states, attention_mask, *args, **kwargs)
        if encoder_hidden_states is not None:
            with torch.no_grad():
                self._record(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        return out

    def _fused(self, attn, hidden_states, encoder_hidden_states, attention_mask, temb, hw) -> torch.Tensor:
        """diffusers' AttnProcessor2_0, step for step, with probe columns on V (see :func:`probe_values`)."""
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
        query, key, value = (_heads_view(t, attn.heads) for t in (query, key, value))
        head_dim = query.shape[-1]
        query, key = _norm_qk(attn, query, key)
        kept = self.tracer.kept(sequence_length, value.device)
        q, k, v = probe_values(query, key, value, 0, kept)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attention_mask, dropout_p=0.0, is_causal=False, scale=head_dim**-0.5
        )
        b = self.tracer.cond_index(batch_size)
        self.tracer.store(self.layer, out[b, :, :, head_dim : head_dim + kept.numel()], hw, restricted=True)
        hidden_states = out[..., :head_dim].transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
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
        q, k = _norm_qk(attn, _heads_view(attn.to_q(x), attn.heads), _heads_view(attn.to_k(c), attn.heads))
        scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * (q.shape[-1] ** -0.5)
        if mask is not None:
            # UNet/PixArt pass the text mask as an additive bias (B, 1, L)
            scores = scores + mask[b : b + 1].float().reshape(1, 1, 1, -1)
        self.tracer.store(self.layer, scores.softmax(-1)[0], hw)


# ---------------------------------------------------------------------- joint attention (SD3)
def _is_sd3_joint(module: torch.nn.Module, layer: str) -> bool:
    return layer.endswith(".attn") and getattr(module, "add_k_proj", None) is not None


class SD3JointRecorder:
    """Wraps JointAttnProcessor2_0 ([image, text]); records the image→text block of the joint softmax."""

    def __init__(self, tracer: AttentionTracer, layer: str, original: Callable) -> None:
        self.tracer, self.layer, self.original = tracer, layer, original

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
        """diffusers' JointAttnProcessor2_0, step for step, with probe columns on V ([image, text] order)."""
        residual = hidden_states
        batch_size = hidden_states.shape[0]
        query, key, value = (_heads_view(p(hidden_states), attn.heads) for p in (attn.to_q, attn.to_k, attn.to_v))
        head_dim = query.shape[-1]
        query, key = _norm_qk(attn, query, key)
        eq, ek, ev = (
            _heads_view(p(encoder_hidden_states), attn.heads)
            for p in (attn.add_q_proj, attn.add_k_proj, attn.add_v_proj)
        )
        if attn.norm_added_q is not None:
            eq = attn.norm_added_q(eq)
        if attn.norm_added_k is not None:
            ek = attn.norm_added_k(ek)
        n_img = residual.shape[1]
        query, key = torch.cat([query, eq], dim=2), torch.cat([key, ek], dim=2)
        value = torch.cat([value, ev], dim=2)
        kept = self.tracer.kept(ev.shape[2], value.device)
        q, k, v = probe_values(query, key, value, n_img, kept)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=False, scale=head_dim**-0.5)
        b = self.tracer.cond_index(batch_size)
        self.tracer.store(self.layer, out[b, :, :n_img, head_dim : head_dim + kept.numel()], hw, restricted=True)
        hidden_states = out[..., :head_dim].transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
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
        q, k = _heads_view(attn.to_q(x), attn.heads), _heads_view(attn.to_k(x), attn.heads)
        kt = _heads_view(attn.add_k_proj(c), attn.heads)
        q, k = _norm_qk(attn, q, k)
        if attn.norm_added_k is not None:
            kt = attn.norm_added_k(kt)
        probs = joint_text_block(q[0], k[0], kt[0], q.shape[-1] ** -0.5)
        self.tracer.store(self.layer, probs, hw)


# ---------------------------------------------------------------------- joint attention (Flux)
def _is_flux_attn(module: torch.nn.Module, layer: str) -> bool:
    return layer.endswith(".attn") and hasattr(module, "norm_q") and hasattr(module, "head_dim")


class FluxJointRecorder:
    """Wraps FluxAttnProcessor ([text, image], RoPE); records the image→text block of the joint softmax.

    Double-stream blocks get text and image separately; single-stream blocks get the concatenated
    sequence, whose first ``tracer.text_len`` tokens are text.
    """

    def __init__(self, tracer: AttentionTracer, layer: str, original: Callable) -> None:
        self.tracer, self.layer, self.original = tracer, layer, original

    def __call__(
        self,
        attn: torch.nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: Any = None,
        **kwargs: Any,
    ) -> Any:
        if _fast_flux(self.original) and not kwargs:
            text_len = encoder_hidden_states.shape[1] if encoder_hidden_states is not None else self.tracer.text_len
            if text_len is None:
                raise ValueError("text_len: required to split Flux single-stream blocks into text and image")
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
        """diffusers' FluxAttnProcessor (native backend), step for step, with probe columns on V ([text, image])."""
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
        d = attn.head_dim
        q, k, v = (t.permute(0, 2, 1, 3) for t in (query, key, value))  # (B, H, S, d), as the native backend does
        kept = self.tracer.kept(text_len, v.device)
        q, k, v = probe_values(q, k, v, 0, kept)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attention_mask, dropout_p=0.0, is_causal=False, scale=d**-0.5
        )
        b = self.tracer.cond_index(out.shape[0])
        self.tracer.store(self.layer, out[b, :, text_len:, d : d + kept.numel()], hw, restricted=True)
        hidden_states = out[..., :d].permute(0, 2, 1, 3).flatten(2, 3).to(query.dtype)
        if encoder_hidden_states is not None:
            encoder_hidden_states, hidden_states = hidden_states.split_with_sizes(
                [encoder_hidden_states.shape[1], hidden_states.shape[1] - encoder_hidden_states.shape[1]], dim=1
            )
            hidden_states = attn.to_out[0](hidden_states.contiguous())
            hidden_states = attn.to_out[1](hidden_states)
            encoder_hidden_states = attn.to_add_out(encoder_hidden_states.contiguous())
            return hidden_states, encoder_hidden_states
        return hidden_states

    @staticmethod
    def _project(attn, x: torch.Tensor, added: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Normed (1, S, H, d) queries and keys of one stream."""
        if added:
            if getattr(attn, "fused_projections", False) and hasattr(attn, "to_added_qkv"):
                q, k, _ = attn.to_added_qkv(x).chunk(3, dim=-1)
            else:
                q, k = attn.add_q_proj(x), attn.add_k_proj(x)
            q, k = q.unflatten(-1, (-1, attn.head_dim)), k.unflatten(-1, (-1, attn.head_dim))
            return attn.norm_added_q(q), attn.norm_added_k(k)
        if getattr(attn, "fused_projections", False) and hasattr(attn, "to_qkv"):
            q, k, _ = attn.to_qkv(x).chunk(3, dim=-1)
        else:
            q, k = attn.to_q(x), attn.to_k(x)
        q, k = q.unflatten(-1, (-1, attn.head_dim)), k.unflatten(-1, (-1, attn.head_dim))
        return attn.norm_q(q), attn.norm_k(k)

    def _record(self, attn, x, c, rotary) -> None:
        from diffusers.models.embeddings import apply_rotary_emb

        b = self.tracer.cond_index(x.shape[0])
        x = x[b : b + 1]
        if c is not None:
            text_len = c.shape[1]
            hw = self.tracer.wants(x.shape[1])
            if hw is None:
                return
            q_t, k_t = self._project(attn, c[b : b + 1], added=True)
            q_i, k_i = self._project(attn, x, added=False)
            q, k = torch.cat([q_t, q_i], dim=1), torch.cat([k_t, k_i], dim=1)
        else:
            text_len = self.tracer.text_len
            if text_len is None:
                raise ValueError("text_len: required to split Flux single-stream blocks into text and image")
            hw = self.tracer.wants(x.shape[1] - text_len)
            if hw is None:
                return
            q, k = self._project(attn, x, added=False)
        if rotary is not None:
            q = apply_rotary_emb(q, rotary, sequence_dim=1)
            k = apply_rotary_emb(k, rotary, sequence_dim=1)
        q, k = q[0].transpose(0, 1), k[0].transpose(0, 1)  # (H, S, d)
        probs = joint_text_block(q[:, text_len:], k[:, text_len:], k[:, :text_len], q.shape[-1] ** -0.5)
        self.tracer.store(self.layer, probs, hw)


def _fast_flux(processor: Any) -> bool:
    """The stock FluxAttnProcessor on the native SDPA backend (the case the fused recorder replicates)."""
    from diffusers.models.transformers.transformer_flux import FluxAttnProcessor

    return (
        type(processor) is FluxAttnProcessor
        and getattr(processor, "_attention_backend", None) is None
        and getattr(processor, "_parallel_config", None) is None
    )


#: kind -> (which layers are traced, recorder class). A new architecture is one recorder + one line.
RECORDERS: dict[str, tuple[Callable[[torch.nn.Module, str], bool], type]] = {
    "unet": (_is_cross, CrossAttentionRecorder),
    "pixart": (_is_cross, CrossAttentionRecorder),
    "sd3": (_is_sd3_joint, SD3JointRecorder),
    "flux": (_is_flux_attn, FluxJointRecorder),
}
