"""Localisation scores of a map against a known region (a drawn or ground-truth mask).

- Pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016): a hit
  if the map's maximum falls inside the mask (optionally within a tolerance of ``tolerance`` pixels).
- Relevance mass (Arras, Osman & Samek, "CLEVR-XAI", Information Fusion 2022): the share of the
  positive attribution inside the mask, ``Σ_{u∈mask} max(M_u, 0) / Σ_u max(M_u, 0)``.
- Relevance rank (same paper): with K the mask's pixel count, the share of the map's K highest pixels that
  lie inside the mask.
- Top-k IoU: intersection over union of the map's top-k % pixels and the mask.

Rankings count ties at the cut in proportion (:mod:`glimpse.map_metrics`'s ``ties="share"``: the expectation
over breaking them at random), so a constant map scores what chance would, not an artefact of pixel order.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation

from glimpse.map_metrics import top_k_iou, top_k_overlap


def _check(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if values.ndim != 2:
        raise ValueError(f"values: expected a 2-D map, got shape {values.shape}")
    if mask.shape != values.shape:
        raise ValueError(f"mask: shape {mask.shape} differs from the map's {values.shape}; resize one first")
    if not mask.any():
        raise ValueError("mask: empty (no pixel inside)")
    return values, mask


def top_share(scores: np.ndarray, mask: np.ndarray, n: int) -> float:
    """Share of the ``n`` highest ``scores`` that lie in ``mask``, ties at the n-th value counted in proportion.

    >>> top_share(np.array([3.0, 1.0, 1.0, 0.0]), np.array([False, True, False, False]), 2)
    0.25
    """
    return top_k_overlap(scores, mask, n, ties="share") / n


def pointing_game(values: np.ndarray, mask: np.ndarray, *, tolerance: int = 0) -> bool:
    """True if the map's maximum lies in ``mask`` dilated by ``tolerance`` pixels (ties: any maximum)."""
    values, mask = _check(values, mask)
    if tolerance < 0:
        raise ValueError(f"tolerance: must be >= 0, got {tolerance}")
    if tolerance:
        mask = binary_dilation(mask, iterations=tolerance)
    return bool(mask[values == values.max()].any())


def relevance_mass(values: np.ndarray, mask: np.ndarray) -> float:
    """Share of the positive attribution inside ``mask``, in [0, 1]; NaN if the map has no positive value."""
    values, mask = _check(values, mask)
    pos = np.clip(values, 0.0, None)
    total = pos.sum()
    if total == 0:
        return float("nan")
    return float(pos[mask].sum() / total)


def relevance_rank(values: np.ndarray, mask: np.ndarray) -> float:
    """Share of the map's K highest pixels inside ``mask`` (K = the mask's pixel count), in [0, 1].

    >>> relevance_rank(np.array([[5.0, 1.0], [0.0, 2.0]]), np.array([[True, False], [False, True]]))
    1.0
    """
    values, mask = _check(values, mask)
    return top_share(values, mask, int(mask.sum()))


def topk_iou(values: np.ndarray, mask: np.ndarray, k: float = 10.0) -> float:
    """Intersection over union of the map's top-``k`` % pixels (by value) and ``mask``, in [0, 1].

    >>> topk_iou(np.array([[5.0, 1.0], [0.0, 2.0]]), np.array([[True, False], [False, False]]), 25)
    1.0
    """
    values, mask = _check(values, mask)
    return top_k_iou(values, mask, k, ties="share")
