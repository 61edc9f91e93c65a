"""What the recorders share: token grids, head views, q/k norms, and the two ways to get the text block.

The recorded block of a layer is P[i, t] = softmax(Q Kᵀ / √d + mask)[i, t] for the image queries i and the
kept text keys t (Vaswani et al. 2017; DAAM, Tang et al. 2023), normalised over the layer's full key set
(for joint attention: image and text keys). No way of getting it forms the attention matrix:

* :func:`attend` runs a layer's own fused SDPA call and returns the block beside the output. On the CPU the
  fused kernel (the one ``F.scaled_dot_product_attention`` picks there, so the output does not change) also
  returns every query's log-normaliser lse_i = log Σ_j exp(s_ij), s_ij = q_i·k_j/√d + mask_ij, and the block
  is one small matmul on the kept text keys of the conditional sample only:
  P_it = exp(s_it − lse_i). Elsewhere one-hot probe columns on V (:func:`probe_values`) make the SDPA
  output carry the block.
* :func:`joint_text_block` recomputes it from Q and K with a log-sum-exp accumulated in query chunks
  (for processors the recorders do not replicate).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F

#: the CPU's fused SDPA kernel with its log-sum-exp (what F.scaled_dot_product_attention calls on the CPU)
_CPU_FLASH = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)

#: queries per chunk are chosen so one chunk of image-key scores stays under this many float32 values
CHUNK_VALUES = 8 * 1024 * 1024


def grid_shape(n: int, image_hw: tuple[int, int]) -> tuple[int, int]:
    """The (h, w) token grid with h·w = n and the aspect ratio of ``image_hw``.

    >>> grid_shape(64 * 96, (512, 768))
    (64, 96)
    """
    H, W = image_hw
    guess = max(1, round(math.sqrt(n * H / W)))
    for h in sorted(range(max(1, guess - 2), guess + 3), key=lambda x: abs(x - guess)):
        if n % h == 0:
            return h, n // h
    raise ValueError(f"image_hw: {n} image tokens do not form a grid with aspect {H}x{W}")


def heads_view(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, S, H·d) -> (B, H, S, d)."""
    return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def norm_qk(attn, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention module's optional query/key norms (SD3, PixArt-Sigma, ...), as diffusers applies them."""
    if attn.norm_q is not None:
        q = attn.norm_q(q)
    if attn.norm_k is not None:
        k = attn.norm_k(k)
    return q, k


def joint_text_block(
    q_img: torch.Tensor, k_img: torch.Tensor, k_txt: torch.Tensor, scale: float, chunk_values: int = CHUNK_VALUES
) -> torch.Tensor:
    """Image-query → text-key block of softmax([q_img] [k_img; k_txt]ᵀ · scale) without the full matrix.

    P_it = exp(q_i·k_t·s − lse_i),  lse_i = logaddexp(logsumexp_{j∈image}(q_i·k_j·s), logsumexp_t(q_i·k_t·s)),
    with the image part of the normaliser accumulated in query chunks of at most ``chunk_values`` scores.

    Parameters
    ----------
    q_img, k_img : (H, N, d) image queries and keys; k_txt : (H, L, d) text keys.
    scale : the softmax temperature s, 1/√d.

    Returns
    -------
    (H, N, L) float32 probabilities; each row sums with the (never formed) image block to 1.

    >>> q, k, kt = torch.ones(1, 2, 4), torch.zeros(1, 2, 4), torch.zeros(1, 1, 4)
    >>> joint_text_block(q, k, kt, 0.5)  # three equal scores per row: a third each
    tensor([[[0.3333],
             [0.3333]]])
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
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    start: int,
    positions: torch.Tensor,
    cache: dict[Any, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Append one-hot "probe" columns to V so that fused attention also returns probabilities.

    With V' = [V | E], E[j, c] = 1 iff key j is text key ``start + positions[c]``, one fused
    scaled-dot-product-attention call gives softmax(QKᵀ/√d) V' = [softmax(QKᵀ/√d) V | P[:, kept text keys]]:
    the layer's output and the recorded probabilities, normalised over the full key set, without forming
    the attention matrix and without recomputing any projection. Q and K get as many zero columns
    (which add exactly nothing to QKᵀ), so all three share one head size, a multiple of 8: the fused
    kernels (flash) need that, and without it PyTorch falls back to the slow, matrix-forming path.
    Call SDPA with ``scale=d ** -0.5`` (d = the original head size). ``cache`` keeps E between calls,
    keyed by the identity of ``positions`` (so the cache must not outlive that tensor), ``start``, its
    shape, device and dtype.

    query, key, value : (B, H, S, d); returns them widened to (B, H, S, d + K + pad).
    """
    batch, heads, seq, d = value.shape
    k = positions.numel()
    width = -(-(d + k) // 8) * 8 - d
    slot = (id(positions), start, seq, width, value.device, value.dtype)
    probe = None if cache is None else cache.get(slot)
    if probe is None:
        probe = torch.zeros(seq, width, dtype=value.dtype, device=value.device)
        probe[start + positions, torch.arange(k, device=value.device)] = 1
        if cache is not None:
            cache[slot] = probe
    value = torch.cat([value, probe.expand(batch, heads, seq, width)], dim=-1)
    query = torch.cat([query, query.new_zeros(*query.shape[:-1], width)], dim=-1)
    key = torch.cat([key, key.new_zeros(*key.shape[:-1], width)], dim=-1)
    return query, key, value


def lse_kernel(query: torch.Tensor) -> bool:
    """Whether :func:`attend` takes the log-sum-exp path for this query (CPU tensors)."""
    return _CPU_FLASH is not None and query.device.type == "cpu"


def attend(
    tracer: Tracer,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    mask: torch.Tensor | None,
    rows: slice,
    text: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer's fused attention, and the recorded block of its conditional sample (module docstring).

    Parameters
    ----------
    query, key, value : (B, H, S, d); the scale is 1/√d, as in diffusers' processors.
    mask : additive or boolean, broadcastable to (B, H, S_q, S_k), or None.
    rows : the image queries among the S_q.
    text : (first text key, number of text keys); the tracer picks the recorded ones among them.

    Returns
    -------
    out : (B, H, S, d) softmax(QKᵀ/√d + mask) V, as the layer's SDPA call gives it.
    probs : (H, K, N) P[b, :, rows, kept text keys]ᵀ of the conditional sample b (``tracer.cond_index``),
        text-major.
    """
    start, text_len = text
    b = tracer.cond_index(query.shape[0])
    scale = query.shape[-1] ** -0.5
    if not lse_kernel(query):
        kept = tracer.kept(text_len, value.device, start)
        q, k, v = probe_values(query, key, value, 0, kept, tracer.probes)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, is_causal=False, scale=scale)
        d = value.shape[-1]
        return out[..., :d], out[b, :, rows, d : d + kept.numel()].transpose(-1, -2)
    if mask is not None and mask.dtype == torch.bool:  # as F.scaled_dot_product_attention converts it
        mask = torch.zeros(mask.shape, dtype=query.dtype, device=mask.device).masked_fill_(~mask, -math.inf)
    if mask is not None and mask.ndim < 4:
        mask = mask.reshape((1,) * (4 - mask.ndim) + tuple(mask.shape))
    out, lse = _CPU_FLASH(query, key, value, 0.0, False, attn_mask=mask, scale=scale)
    kept = tracer.kept_index(text_len, value.device, start)
    bias = lse[b, :, rows].unsqueeze(-2)  # (H, 1, N), float32 (float64 for float64 inputs)
    q, k = query[b, :, rows], key[b, :, kept]
    if q.dtype != bias.dtype:  # half precision: the block in float32, like the kernel's normaliser
        q, k = q.to(bias.dtype), k.to(bias.dtype)
    # text-major, so that the head mean is contiguous: s_ti − lse_i = −lse_i + scale · k_t·q_i in one op
    scores = torch.baddbmm(bias, k, q.transpose(-1, -2), beta=-1, alpha=scale)
    if mask is not None:
        m = mask[b if mask.shape[0] > 1 else 0]
        scores.add_((m[:, rows] if m.shape[1] > 1 else m)[..., kept].transpose(-1, -2))
    return out, scores.exp_()


class Tracer(Protocol):
    """What a recorder asks of the tracer (:class:`glimpse.attention.tracer.AttentionTracer`)."""

    text_len: int | None
    probes: dict[Any, torch.Tensor]  # probe columns by shape (:func:`probe_values`), for this installation

    def wants(self, n_image_tokens: int) -> tuple[int, int] | None: ...
    def cond_index(self, batch: int) -> int: ...
    def kept(self, text_len: int, device: torch.device, start: int = 0) -> torch.Tensor: ...
    def kept_index(self, text_len: int, device: torch.device, start: int = 0) -> slice | torch.Tensor: ...
    def store(self, layer: str, probs: torch.Tensor, hw: tuple[int, int], *, restricted: bool = False) -> None: ...


class Recorder:
    """Base of the recorders: stands in for one layer's processor, ``original``, while a tracer is installed.

    Subclasses record in ``__call__`` and say in ``records(module, layer)`` which attention layers they stand in
    for (the kind's default :meth:`~glimpse.attention.kinds.Kind.traces`); the tracer builds one per traced
    layer and drops it on exit.
    """

    records: ClassVar[Callable[[torch.nn.Module, str], bool]]

    def __init__(self, tracer: Tracer, layer: str, original: Callable) -> None:
        self.tracer, self.layer, self.original = tracer, layer, original
