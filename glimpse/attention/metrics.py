"""Overlap measures between word attention maps: thresholded IoU and content-vs-style separation.

The separation measure follows "The Cow of Rembrandt: Analyzing Artistic Prompt Interpretation in
Text-to-Image Models" (arXiv 2507.23313): each word map is binarised at a threshold t, and the IoU of a
content word's mask with a style word's mask is compared with the IoU of every *other* pair of words of
the same prompt,

    IoU(A, B) = |M_A ∩ M_B| / |M_A ∪ M_B|,
    Δ = mean_{(i, j) ≠ (A, B)} IoU(i, j) − IoU(A, B),

so Δ > 0 means that A and B overlap less than words of that prompt usually do (content and style are
attended to in separate regions) and Δ < 0 that they overlap more.

Binarisation, IoU and their rules (DAAM's min-max ``>`` threshold or a quantile; an empty union is NaN, and
the baseline averages over the defined pairs only and says how many it used) are :mod:`glimpse.map_metrics`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from glimpse import map_metrics
from glimpse.map_metrics import DEFAULT_THRESHOLD, MODES, iou
from glimpse.map_metrics import binarise as binarize

__all__ = [
    "DEFAULT_THRESHOLD",
    "MODES",
    "Separation",
    "binarize",
    "content_style_separation",
    "iou",
    "iou_matrix",
    "thresholded_iou",
]


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
        See :func:`glimpse.map_metrics.binarise`.

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
    return map_metrics.iou_matrix(binarize(maps, threshold, mode=mode))


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
        See :func:`glimpse.map_metrics.binarise`.

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
