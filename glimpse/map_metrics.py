"""How a map becomes a region and how two maps or regions are compared: the one place for these rules.

Every lens that scores maps against each other or against a mask uses these functions (the attention
word maps, Compare's agreement, the localisation scores of Evaluate, the lessons, the shapes model's
evaluation), so a "top 20 %" or an "IoU" means the same thing everywhere.

**Binarising by a threshold** (DAAM, Tang et al. 2023, "What the DAAM", ACL): ``mode="absolute"`` min-max
normalises the map to [0, 1] and keeps ``(m − min) / (max − min) > t``; ``mode="quantile"`` keeps
``m > quantile(m, t)``. A constant map has no region of higher value: its mask is empty.

**The top-k % region**: with N pixels, n = ⌈k/100 · N⌉ (at least one), and t the n-th largest value,

    T_k(M) = {p : M(p) ≥ t}.

*The tie rule*: every pixel tied with the n-th largest value is in the region (``ties="keep"``), so the
region can hold more than n pixels and a constant map's region is the whole image — a set that does not
depend on the order of the pixels. The localisation scores (relevance rank, top-k IoU against a mask, the
leakage benchmark's null share) instead count the tied pixels in proportion (``ties="share"``): the region
has exactly n places, the pixels above t take theirs and the pixels at t share what is left, which is the
expectation over breaking the ties at random, so a constant map scores what chance would.

**IoU** of two masks: |A ∩ B| / |A ∪ B|; when both are empty the union is empty and the IoU is undefined:
NaN (:data:`EMPTY_IOU`), never 0, so that a mean over pairs can leave it out and say so.

**Spearman's ρ** (Spearman 1904; for saliency maps Adebayo et al., "Sanity Checks for Saliency Maps",
NeurIPS 2018): the Pearson correlation of the pixels' ranks, ties given their average rank; NaN when
either map is constant (the correlation is undefined, and we do not pretend it is 0).

>>> m = np.array([[0.0, 1.0], [2.0, 4.0]])
>>> binarise(m).astype(int).tolist(), top_k_mask(m, 50).astype(int).tolist()
([[0, 0], [1, 1]], [[0, 0], [1, 1]])
>>> iou(binarise(m), top_k_mask(m, 25))
0.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "DEFAULT_THRESHOLD",
    "EMPTY_IOU",
    "MODES",
    "TIES",
    "binarise",
    "check_map",
    "iou",
    "iou_matrix",
    "spearman",
    "spearman_matrix",
    "top_k_count",
    "top_k_iou",
    "top_k_mask",
    "top_k_overlap",
]

#: binarisation modes of :func:`binarise`
MODES: tuple[str, ...] = ("absolute", "quantile")
#: DAAM's threshold for segmenting nouns (τ = 0.4 in the paper's figures)
DEFAULT_THRESHOLD = 0.4
#: how pixels tied at the top-k cut count: all kept (the region's rule) or shared in proportion (localisation)
TIES: tuple[str, ...] = ("keep", "share")
#: the IoU of two empty masks (undefined)
EMPTY_IOU = float("nan")


def check_map(values: np.ndarray, name: str = "values") -> np.ndarray:
    """``values`` as a finite real (H, W) float64 map; ValueError naming ``name`` otherwise."""
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name}: expected a 2-D map (H, W), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name}: expected a real-valued map, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: the map holds NaN or infinite values")
    return arr


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0 or np.isnan(threshold):
        raise ValueError(f"threshold: {threshold} is outside [0, 1]")
    return threshold


def _check_choice(value: str, known: tuple[str, ...], name: str) -> str:
    if value not in known:
        raise ValueError(f"{name}: unknown {value!r}; known: {', '.join(known)}")
    return value


def _check_k(k: float) -> float:
    k = float(k)
    if not 0.0 < k <= 100.0:
        raise ValueError(f"k: the top-k percentage must be in (0, 100], got {k}")
    return k


def binarise(
    values: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    mode: str = "absolute",
    inclusive: bool = False,
) -> np.ndarray:
    """Binary mask of a map at ``threshold`` (DAAM's rule, see the module docstring).

    Parameters
    ----------
    values : ndarray, shape (..., H, W)
        Raw (unnormalised) map(s); leading axes are binarised independently.
    threshold : float in [0, 1]
        ``"absolute"``: keep ``(m − min) / (max − min) > threshold``; a constant map gives an empty mask.
        ``"quantile"``: keep ``m > quantile(m, threshold)`` (t = 0.8 keeps about the top 20 %).
    mode : {"absolute", "quantile"}
    inclusive : bool
        Keep the values equal to the threshold too (``≥``): the rule of the shapes model's evaluation
        (``training/shapes_t2i/evaluate.py``), whose recorded numbers were made with it.

    Returns
    -------
    ndarray of bool, same shape as ``values``.

    Examples
    --------
    >>> binarise(np.array([[0.0, 1.0], [2.0, 4.0]]), 0.4).astype(int).tolist()
    [[0, 0], [1, 1]]
    >>> binarise(np.arange(6.0).reshape(2, 3), 0.4, inclusive=True).astype(int).tolist()  # 2/5 = 0.4 kept
    [[0, 0, 1], [1, 1, 1]]
    """
    threshold = _check_threshold(threshold)
    mode = _check_choice(mode, MODES, "mode")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim < 2:
        raise ValueError(f"values: expected a map of shape (..., H, W), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("values: the map contains NaN or infinite values")
    keep = np.greater_equal if inclusive else np.greater
    axes = (-2, -1)
    if mode == "absolute":
        lo = values.min(axis=axes, keepdims=True)
        span = values.max(axis=axes, keepdims=True) - lo
        # a constant map has no region of higher value: it gets an empty mask, also with ``inclusive``
        norm = np.divide(values - lo, span, out=np.full_like(values, -1.0), where=span > 0)
        return keep(norm, threshold)
    cut = np.quantile(values, threshold, axis=axes, keepdims=True)
    return keep(values, cut)


def top_k_count(size: int, k: float) -> int:
    """n = ⌈k/100 · size⌉ pixels, at least one, for a top-``k`` % region of ``size`` pixels.

    >>> top_k_count(10, 20), top_k_count(10, 1), top_k_count(50176, 20)
    (2, 1, 10036)
    """
    return max(1, math.ceil(_check_k(k) / 100.0 * size - 1e-9))


def _cut(flat: np.ndarray, n: int) -> float:
    """The n-th largest of ``flat``."""
    if not 1 <= n <= flat.size:
        raise ValueError(f"n: between 1 and {flat.size}, got {n}")
    return np.partition(flat, flat.size - n)[flat.size - n]


def top_k_mask(values: np.ndarray, k: float = 20.0, *, absolute: bool = False) -> np.ndarray:
    """The map's top-``k`` % region: ``values ≥`` the n-th largest value, n = :func:`top_k_count` (ties kept).

    Parameters
    ----------
    values : ndarray, shape (H, W)
        The map (raw, signed); finite.
    k : float
        Percentage of pixels to keep, in (0, 100].
    absolute : bool
        Rank |values| instead of values.

    Returns
    -------
    mask : ndarray of bool, shape (H, W)
        Every pixel tied with the n-th largest value is kept, so the mask can hold more than n pixels
        (a constant map selects every pixel).

    Examples
    --------
    >>> top_k_mask(np.arange(10.0).reshape(2, 5), 20).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 0, 0, 1, 1]])
    """
    arr = check_map(values)
    if absolute:
        arr = np.abs(arr)
    flat = arr.ravel()
    return arr >= _cut(flat, top_k_count(flat.size, k))


def top_k_overlap(values: np.ndarray, mask: np.ndarray, n: int, *, ties: str = "keep") -> float:
    """How many of the ``n`` highest ``values`` lie in ``mask``.

    ``ties="keep"``: the pixels of the region ``values ≥ t`` (t the n-th largest value) inside ``mask``,
    every tied pixel counted (the region's rule, :func:`top_k_mask`). ``ties="share"``: the n places are
    filled by the pixels above t, the rest shared in proportion among the pixels at t, so the count is the
    expectation over breaking the ties at random (and may be fractional).

    >>> v, m = np.array([3.0, 1.0, 1.0, 0.0]), np.array([False, True, False, False])
    >>> top_k_overlap(v, m, 2), top_k_overlap(v, m, 2, ties="share")
    (1.0, 0.5)
    """
    ties = _check_choice(ties, TIES, "ties")
    flat, inside = np.asarray(values, dtype=np.float64).ravel(), np.asarray(mask, dtype=bool).ravel()
    threshold = _cut(flat, n)
    above, at = flat > threshold, flat == threshold
    if ties == "keep":
        return float(((above | at) & inside).sum())
    share_at = (at & inside).sum() / at.sum()
    return float((above & inside).sum() + (n - above.sum()) * share_at)


def top_k_iou(values: np.ndarray, mask: np.ndarray, k: float = 20.0, *, ties: str = "keep") -> float:
    """IoU of the map's top-``k`` % region (:func:`top_k_mask`) and ``mask``, with the tie rule ``ties``.

    With ``ties="share"`` the region has exactly n pixels and the intersection is
    :func:`top_k_overlap`'s expectation: IoU = I / (n + |mask| − I).

    >>> top_k_iou(np.array([[5.0, 1.0], [0.0, 2.0]]), np.array([[True, False], [False, False]]), 25)
    1.0
    """
    ties = _check_choice(ties, TIES, "ties")
    values, mask = np.asarray(values, dtype=np.float64), np.asarray(mask, dtype=bool)
    if ties == "keep":
        return iou(top_k_mask(values, k), mask)
    n = top_k_count(values.size, k)
    inter = top_k_overlap(values, mask, n, ties="share")
    return float(inter / (n + mask.sum() - inter))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """|a ∩ b| / |a ∪ b| of two boolean masks of one shape; :data:`EMPTY_IOU` (NaN) when both are empty.

    >>> a = np.array([True, True, False]); iou(a, a), iou(a, ~a), iou(~a & a, ~a & a)
    (1.0, 0.0, nan)
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"b: shape {b.shape} differs from a's {a.shape}")
    union = np.logical_or(a, b).sum()
    if union == 0:
        return EMPTY_IOU
    return float(np.logical_and(a, b).sum() / union)


def iou_matrix(masks: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Pairwise :func:`iou` of N masks: (N, N) float64, symmetric, NaN where both masks are empty."""
    flat = np.stack([np.asarray(m, dtype=bool).ravel() for m in masks]).astype(np.float64)
    inter = flat @ flat.T
    sizes = flat.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    out = np.full(inter.shape, EMPTY_IOU)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def _centred_ranks(values: np.ndarray) -> np.ndarray:
    ranks = rankdata(np.asarray(values, dtype=np.float64).ravel())
    return ranks - ranks.mean()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ between two maps of one shape over their pixels; NaN when either is constant.

    ρ = cov(rank a, rank b) / (std(rank a) · std(rank b)), average ranks for ties.

    >>> spearman(np.arange(4.0), np.arange(4.0) ** 3), spearman(np.arange(4.0), -np.arange(4.0))
    (1.0, -1.0)
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"b: shape {b.shape} differs from a's {a.shape}; resample one first")
    ra, rb = _centred_ranks(a), _centred_ranks(b)
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    if denom == 0.0:
        return float("nan")
    return float(np.clip((ra @ rb) / denom, -1.0, 1.0))


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`spearman` of each row of ``a`` with the same row of ``b`` (both (R, n)), ranked row by row at
    once: (R,), NaN where a row of either is constant (a bootstrap's resamples, without a Python loop).

    >>> spearman_rows(np.array([[1.0, 2, 3], [1, 1, 1]]), np.array([[3.0, 2, 1], [1, 2, 3]]))
    array([-1., nan])
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"b: shape {b.shape} differs from a's {a.shape}, or they are not (rows, values)")
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    rho = np.full(a.shape[0], np.nan)
    np.divide((ra * rb).sum(axis=1), denom, out=rho, where=denom > 0)
    return np.clip(rho, -1.0, 1.0)


def spearman_matrix(maps: Sequence[np.ndarray]) -> np.ndarray:
    """Pairwise :func:`spearman` of N maps of one shape, each ranked once: (N, N), NaN for constant maps."""
    ranks = [_centred_ranks(m) for m in maps]
    norms = [math.sqrt(float(r @ r)) for r in ranks]
    n = len(ranks)
    rho = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(i, n):
            denom = norms[i] * norms[j]
            rho[i, j] = rho[j, i] = np.clip(ranks[i] @ ranks[j] / denom, -1, 1) if denom else np.nan
    return rho
