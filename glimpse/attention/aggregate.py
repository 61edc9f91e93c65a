"""Aggregate a recorded :class:`AttentionTrace` into token and word heat maps (DAAM).

DAAM (Tang et al., "What the DAAM: Interpreting Stable Diffusion Using Cross Attention", ACL 2023):
for every (layer ℓ, head η) the probabilities are summed over the selected timesteps, upsampled
bicubically to the trace's aggregation grid G × G (DAAM's latent grid, ``trace.grid``) and clamped at
zero, then averaged over all (ℓ, η); the G × G map is finally resized bicubically to the output:

    D_k = Bicubic_out( mean_{ℓ,η} max(0, Bicubic_G( Σ_t P^{ℓ,η}_{t,k} )) ),

and a word's map is the mean of its sub-tokens' maps. Without a grid (transformer pipelines) the first
resize goes straight to the output size and the second is skipped. Maps stay raw (unnormalised; the
second bicubic may undershoot zero by a little, as in DAAM): normalisation is a display option.

The clamp acts per head, as in DAAM, whenever per-head data covers the selection: heads kept at every
step (``heads=True`` at generation), or the per-head sums over all steps that UNet traces carry
(``trace.head_sums``) when the selection spans every step. Otherwise (a step range of a head-averaged
trace, and transformer traces) each layer contributes its head mean, clamped after the mean, weighted by
its number of heads when known; that differs from DAAM only where bicubic upsampling undershoots zero.

DAAM's ``compute_word_heat_map`` merges every occurrence of a repeated word into one map; here each
occurrence keeps its own map (merge them with ``word_maps(...)[indices].mean(0)`` when wanted).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from glimpse.attention.trace import AttentionTrace

TimeSelection = slice | tuple[int, int] | None


def _time_index(trace: AttentionTrace, timesteps: TimeSelection) -> np.ndarray:
    """Step indices (generation order) selected by a slice or an inclusive (first, last) pair."""
    n = len(trace.timesteps)
    if timesteps is None:
        idx = np.arange(n)
    elif isinstance(timesteps, slice):
        idx = np.arange(n)[timesteps]
    else:
        first, last = (int(v) for v in timesteps)
        if not (0 <= first <= last < n):
            raise ValueError(f"timesteps: step range ({first}, {last}) must satisfy 0 <= first <= last < {n}")
        idx = np.arange(first, last + 1)
    if idx.size == 0:
        raise ValueError(f"timesteps: {timesteps!r} selects no step of {n}")
    return idx


def _layer_index(trace: AttentionTrace, layers: Sequence[str] | None, resolutions: Sequence[int] | None) -> list[int]:
    if layers is not None:
        unknown = [name for name in layers if name not in trace.layers]
        if unknown:
            raise ValueError(f"layers: unknown {unknown}; recorded: {list(trace.layers)}")
    if resolutions is not None:
        missing = sorted(set(int(r) for r in resolutions) - set(trace.resolutions()))
        if missing:
            raise ValueError(f"resolutions: {missing} not recorded; recorded: {list(trace.resolutions())}")
    chosen = [
        i
        for i, name in enumerate(trace.layers)
        if (layers is None or name in layers)
        and (resolutions is None or trace.layer_maps[i].shape[-2] in {int(r) for r in resolutions})
    ]
    if not chosen:
        raise ValueError(f"layers: the selection (layers={layers}, resolutions={resolutions}) is empty")
    return chosen


def _heads_index(trace: AttentionTrace, heads: Sequence[int] | None) -> list[int] | None:
    if heads is None:
        return None
    if not trace.heads:
        raise ValueError("heads: the trace averaged heads while recording; generate with heads=True to select heads")
    n = trace.layer_maps[0].shape[1]
    bad = [h for h in heads if not 0 <= int(h) < n]
    if bad or not len(heads):
        raise ValueError(f"heads: {list(heads)} must be a non-empty subset of 0..{n - 1}")
    return [int(h) for h in heads]


def _out_shape(trace: AttentionTrace, size: int | None) -> tuple[int, int]:
    if size is not None:
        if int(size) < 1:
            raise ValueError(f"size: {size} must be >= 1")
        return int(size), int(size)
    if trace.image_shape is not None:
        return int(trace.image_shape[0]), int(trace.image_shape[1])
    side = max(m.shape[-2] for m in trace.layer_maps)
    return side, side


def _summed_keys(trace: AttentionTrace, i: int, t_idx: np.ndarray, h_idx: list[int] | None) -> tuple[torch.Tensor, int]:
    """Σ_t P of layer i as (keys, K, h, w) float32, and the number of (layer, head) keys it stands for."""
    every_step = t_idx.size == len(trace.timesteps)
    if trace.heads:
        summed = torch.from_numpy(trace.layer_maps[i][t_idx].astype(np.float32)).sum(0)  # (heads, K, h, w)
        summed = summed if h_idx is None else summed[h_idx]
        return summed, summed.shape[0]
    sums = trace.head_sums[i] if trace.head_sums is not None else None
    if sums is not None and every_step:
        summed = torch.from_numpy(np.asarray(sums, dtype=np.float32))  # DAAM's per-head sums over all steps
        return summed, summed.shape[0]
    summed = torch.from_numpy(trace.layer_maps[i][t_idx].astype(np.float32)).sum(0).unsqueeze(0)  # head mean
    return summed, 1 if sums is None else int(sums.shape[0])


def token_maps(
    trace: AttentionTrace,
    *,
    size: int | None = None,
    timesteps: TimeSelection = None,
    layers: Sequence[str] | None = None,
    resolutions: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
) -> np.ndarray:
    """DAAM map of every kept token, shape (len(trace.tokens), size, size), float32.

    Parameters
    ----------
    trace : the recorded attention.
    size : output side in pixels (default: the image's (H, W)). The maps are first aggregated on the
        trace's grid (``trace.grid``, DAAM's 64×64 for 512-px Stable Diffusion) and then resized to ``size``;
        ``size=trace.grid`` returns DAAM's grid itself (its ``compute_global_heat_map``).
    timesteps : a slice of step indices (generation order) or an inclusive (first, last) pair.
    layers, resolutions : restrict to these recorded layer paths / map heights (the recorded set itself
        is chosen at generation: ``generate_with_attention(..., layers="daam" | "all")``).
    heads : head indices (only for traces recorded with ``heads=True``).

    Returns
    -------
    np.ndarray
        D_k = Bicubic_size(mean over (layer, head) of max(0, Bicubic_grid(sum over timesteps of P)));
        raw, unnormalised (see the module docstring for when the clamp acts per head).
    """
    t_idx = _time_index(trace, timesteps)
    h_idx = _heads_index(trace, heads)
    out_hw = _out_shape(trace, size)
    grid_hw = out_hw if trace.grid is None else (int(trace.grid), int(trace.grid))
    total = torch.zeros(len(trace.tokens), *grid_hw, dtype=torch.float32)
    count = 0
    for i in _layer_index(trace, layers, resolutions):
        summed, weight = _summed_keys(trace, i, t_idx, h_idx)
        up = F.interpolate(summed, size=grid_hw, mode="bicubic", align_corners=False).clamp_(min=0)
        total += up.sum(0) * (weight / up.shape[0])
        count += weight
    mean = total / count
    if grid_hw != out_hw:
        # DAAM's WordHeatMap.expand_as: the grid map resized bicubically to the image, no clamp
        mean = F.interpolate(mean.unsqueeze(0), size=out_hw, mode="bicubic", align_corners=False)[0]
    return mean.numpy()


def word_maps(
    trace: AttentionTrace,
    *,
    size: int | None = None,
    timesteps: TimeSelection = None,
    layers: Sequence[str] | None = None,
    resolutions: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
) -> np.ndarray:
    """DAAM map of every prompt word, shape (len(trace.words), size, size), float32.

    A word's map is the mean of its sub-tokens' :func:`token_maps` (same options).
    """
    tokens = token_maps(trace, size=size, timesteps=timesteps, layers=layers, resolutions=resolutions, heads=heads)
    return np.stack([tokens[list(idx)].mean(0) for idx in trace.word_tokens]).astype(np.float32)


def word_mass_over_time(
    trace: AttentionTrace,
    *,
    timesteps: TimeSelection = None,
    layers: Sequence[str] | None = None,
    resolutions: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
) -> np.ndarray:
    """Each word's share of the attention at every selected step, shape (len(words), T'), float32.

    mass_w(t) = mean over (layer, head) of the mean over image positions of Σ_{k ∈ w} P_{t,k}: the
    fraction of an average image position's attention that goes to the word's tokens (in [0, 1]).
    """
    t_idx = _time_index(trace, timesteps)
    h_idx = _heads_index(trace, heads)
    total = np.zeros((len(trace.tokens), t_idx.size), dtype=np.float64)
    count = 0
    for i in _layer_index(trace, layers, resolutions):
        m = trace.layer_maps[i][t_idx].astype(np.float32).mean(axis=(-2, -1))  # (T', [H,] K)
        if trace.heads:
            m = m if h_idx is None else m[:, h_idx]
            count += m.shape[1]
            m = m.sum(1)
        else:
            count += 1
        total += m.T
    per_token = total / count
    return np.stack([per_token[list(idx)].sum(0) for idx in trace.word_tokens]).astype(np.float32)
