"""Overlap measures between word attention maps: thresholded IoU and content-vs-style separation.

The separation measure follows "The Cow of Rembrandt: Analyzing Artistic Prompt Interpretation in
Text-to-Image Models" (arXiv 2507.23313): each word map is binarised at a threshold t, and the IoU of a
content word's mask with a style word's mask is compared with the IoU of every *other* pair of words of
the same prompt,

    IoU(A, B) = |M_A ∩ M_B| / |M_A ∪ M_B|,
    Δ = mean_{(i, j) ≠ (A, B)} IoU(i, j) − IoU(A, B),

so Δ > 0 means that A and B overlap less than words of that prompt usually do (content and style are
attended to in separate regions) and Δ < 0 that they overlap more.

Binarisation (DAAM, Tang et al. 2023, "What the DAAM", ACL): ``"absolute"`` min-max normalises the
map to [0, 1] and keeps pixels with value > t; ``"quantile"`` keeps pixels above the t-quantile of the
raw map (so t = 0.8 keeps roughly the top 20 %).

An IoU whose union is empty (two constant maps, for instance) is undefined and reported as NaN; the
baseline averages over the defined pairs only and says how many it used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MODES: tuple[str, ...] = ("absolute", "quantile")
#: DAAM's threshold for segmenting nouns (τ = 0.4 in the paper's figures)
DEFAULT_THRESHOLD = 0.4


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0 or np.isnan(threshold):
        raise ValueError(f"threshold: {threshold} is outside [0, 1]")
    return threshold


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode: unknown {mode!r}; known: {', '.join(MODES)}")
    return mode


def binarize(values: np.ndarray, threshold: float = DEFAULT_THRESHOLD, *, mode: str = "absolute") -> np.ndarray:
    """Binary mask of a map at ``threshold``.

    Parameters
    ----------
    values : ndarray, shape (..., H, W)
        Raw (unnormalised) attention map(s); leading axes are binarised independently.
    threshold : float in [0, 1]
        ``"absolute"``: keep ``(m − min) / (max − min) > threshold`` (DAAM's rule); a constant map gives
        an empty mask. ``"quantile"``: keep ``m > quantile(m, threshold)``.
    mode : {"absolute", "quantile"}

    Returns
    -------
    ndarray of bool, same shape as ``values``.

    Examples
    --------
    >>> binarize(np.array([[0.0, 1.0], [2.0, 4.0]]), 0.4).astype(int).tolist()
    [[0, 0], [1, 1]]
    """
    threshold = _check_threshold(threshold)
    mode = _check_mode(mode)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim < 2:
        raise ValueError(f"values: expected a map of shape (..., H, W), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("values: the map contains NaN or infinite values")
    axes = (-2, -1)
    if mode == "absolute":
        lo = values.min(axis=axes, keepdims=True)
        span = values.max(axis=axes, keepdims=True) - lo
        # a constant map has no region of higher attention: normalising it to 0 gives an empty mask
        norm = np.divide(values - lo, span, out=np.zeros_like(values), where=span > 0)
        return norm > threshold
    cut = np.quantile(values, threshold, axis=axes, keepdims=True)
    return values > cut


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of the same shape; NaN when both are empty."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"b: shape {b.shape} differs from a's {a.shape}")
    union = np.logical_or(a, b).sum()
    if union == 0:
        return float("nan")
    return float(np.logical_and(a, b).sum() / union)


def thresholded_iou(
    values: np.ndarray, mask: np.ndarray, threshold: float = DEFAULT_THRESHOLD, *, mode: str = "absolute"
) -> float:
    """IoU between a map binarised at ``threshold`` and a reference mask (an object's pixels, say).

    This is DAAM's segmentation score: a word map thresholded at τ against the ground-truth mask of the
    object the word names.

    Parameters
    ----------
    values : ndarray, shape (H, W)
        Raw attention map.
    mask : ndarray of bool, shape (H, W)
        Reference region.
    threshold, mode
        See :func:`binarize`.

    Examples
    --------
    >>> m = np.zeros((4, 4)); m[:2, :2] = 1.0
    >>> thresholded_iou(m, m > 0, 0.5)
    1.0
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values: expected one (H, W) map, got shape {values.shape}")
    mask = np.asarray(mask)
    if mask.shape != values.shape:
        raise ValueError(f"mask: shape {mask.shape} differs from the map's {values.shape}")
    return iou(binarize(values, threshold, mode=mode), mask.astype(bool))


def iou_matrix(maps: np.ndarray, threshold: float = DEFAULT_THRESHOLD, *, mode: str = "absolute") -> np.ndarray:
    """Pairwise IoU of the binarised maps: (N, N) float64, symmetric, NaN where undefined.

    Parameters
    ----------
    maps : ndarray, shape (N, H, W)
        One raw map per word.
    """
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"maps: expected shape (words, H, W), got {maps.shape}")
    masks = binarize(maps, threshold, mode=mode).reshape(len(maps), -1).astype(np.float64)
    inter = masks @ masks.T
    sizes = masks.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    out = np.full(inter.shape, np.nan)
    np.divide(inter, union, out=out, where=union > 0)
    return out


@dataclass(frozen=True)
class Separation:
    """Content-vs-style separation of two words of one prompt (see the module docstring).

    ``delta = baseline_mean − iou``: positive when the two words overlap less than the prompt's other
    word pairs do.
    """

    words: tuple[str, ...]
    index_a: int
    index_b: int
    threshold: float
    mode: str
    iou: float
    baseline_mean: float
    baseline_std: float
    baseline_pairs: int  # pairs with a defined IoU that entered the baseline
    delta: float
    pair_iou: np.ndarray  # (N, N) IoU matrix of all word pairs

    @property
    def word_a(self) -> str:
        return self.words[self.index_a]

    @property
    def word_b(self) -> str:
        return self.words[self.index_b]


def _word_index(word: int | str, words: Sequence[str], name: str) -> int:
    if isinstance(word, (int, np.integer)):
        index = int(word)
        if not 0 <= index < len(words):
            raise ValueError(f"{name}: index {index} is outside 0..{len(words) - 1}")
        return index
    hits = [i for i, w in enumerate(words) if w == word]
    if not hits:
        raise ValueError(f"{name}: {word!r} is not a word of the prompt; words: {list(words)}")
    if len(hits) > 1:
        raise ValueError(f"{name}: {word!r} occurs {len(hits)} times (positions {hits}); pass its index")
    return hits[0]


def content_style_separation(
    maps: np.ndarray,
    words: Sequence[str],
    a: int | str,
    b: int | str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    mode: str = "absolute",
) -> Separation:
    """IoU of two words' thresholded maps against the baseline of all other word pairs of the prompt.

    Implements the content/style separation of "The Cow of Rembrandt" (arXiv 2507.23313):
    ``Δ = mean IoU(other pairs) − IoU(a, b)``, with the baseline's standard deviation to judge whether
    Δ is large.

    Parameters
    ----------
    maps : ndarray, shape (N, H, W)
        Raw word maps of one prompt (e.g. ``glimpse.attention.word_maps``), in word order.
    words : sequence of str, length N
    a, b : int or str
        The two words, by position or by text (text must be unique in the prompt).
    threshold, mode
        See :func:`binarize`.

    Returns
    -------
    Separation

    Raises
    ------
    ValueError
        If ``a`` and ``b`` are the same word, the prompt has fewer than 3 words (no other pair to compare
        with), or no other pair has a defined IoU.
    """
    maps = np.asarray(maps)
    if maps.ndim != 3 or len(maps) != len(words):
        raise ValueError(f"maps: expected shape ({len(words)}, H, W) for {len(words)} words, got {maps.shape}")
    ia, ib = _word_index(a, words, "a"), _word_index(b, words, "b")
    if ia == ib:
        raise ValueError(f"b: the same word as a ({words[ia]!r} at position {ia}); pick two different words")
    if len(words) < 3:
        raise ValueError(f"words: {len(words)} words leave no other pair for the baseline; use at least 3 words")
    matrix = iou_matrix(maps, threshold, mode=mode)
    pair = {ia, ib}
    others = np.array(
        [matrix[i, j] for i in range(len(words)) for j in range(i + 1, len(words)) if {i, j} != pair],
        dtype=np.float64,
    )
    others = others[~np.isnan(others)]
    if others.size == 0:
        raise ValueError("maps: no other word pair has a defined IoU (all masks empty); lower the threshold")
    mean = float(others.mean())
    pair_iou = float(matrix[ia, ib])
    return Separation(
        words=tuple(words),
        index_a=ia,
        index_b=ib,
        threshold=float(threshold),
        mode=mode,
        iou=pair_iou,
        baseline_mean=mean,
        baseline_std=float(others.std()),
        baseline_pairs=int(others.size),
        delta=mean - pair_iou,
        pair_iou=matrix,
    )
