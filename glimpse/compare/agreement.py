"""Agreement between two explanation maps: rank correlation, top-k % overlap, pointing game.

Any two maps can be compared — saliency maps of different methods, a prompt word's cross-attention map
and a classifier's Grad-CAM, a complexity map — once both are resampled to one grid. The three scores
answer different questions:

* Spearman rank correlation (Spearman 1904; used for saliency maps by Adebayo et al., "Sanity Checks
  for Saliency Maps", NeurIPS 2018): do the maps order *all* pixels alike?
  rho = Pearson(rank(A), rank(B)) over the pixels, ties given their average rank.
* Top-k % IoU: do the maps' most salient k % of pixels coincide?
  IoU = |T_k(A) ∩ T_k(B)| / |T_k(A) ∪ T_k(B)|, with T_k(M) = {p : M(p) >= the ceil(k/100 · N)-th largest
  value of M} (ties at the threshold are kept, so a constant map's region is the whole image).
* Pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016, with the
  annotated box replaced by the other map's top-k % region): hit = 1 if argmax_p A(p) ∈ T_k(B).
  It is asymmetric: ``pointing[i, j]`` asks whether map i's peak falls in map j's region.

Maps are compared as they are (raw, signed) unless ``absolute=True`` takes |map| first: for signed
gradient maps both signs mark evidence, so ``absolute`` is usually the fair comparison; for CAMs and
attention maps (non-negative) it changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from glimpse.resample import resample

__all__ = [
    "AgreementMatrix",
    "agreement_matrix",
    "common_grid",
    "pointing_game",
    "spearman",
    "top_k_iou",
    "top_k_mask",
]


def _as_map(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name}: expected a 2-D map (H, W), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name}: expected a real-valued map, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: the map holds NaN or infinite values")
    return arr


def _check_k(k: float) -> float:
    k = float(k)
    if not 0.0 < k <= 100.0:
        raise ValueError(f"k: the top-k percentage must be in (0, 100], got {k}")
    return k


def common_grid(*maps: np.ndarray, size: tuple[int, int] | None = None) -> tuple[np.ndarray, ...]:
    """Resample ``maps`` to one grid: ``size`` if given, else the smallest height and width among them.

    Downsampling to the coarsest map avoids inventing detail the coarse map does not have (a 7×7 CAM
    compared at 224×224 would count its interpolation as agreement).
    """
    arrays = [_as_map(m, f"maps[{i}]") for i, m in enumerate(maps)]
    if size is None:
        size = (min(a.shape[0] for a in arrays), min(a.shape[1] for a in arrays))
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size: expected (H, W) with positive sides, got {size}")
    return tuple(resample(a, size) for a in arrays)


def top_k_mask(values: np.ndarray, k: float = 20.0, *, absolute: bool = False) -> np.ndarray:
    """Boolean mask of the top ``k`` % pixels of a map.

    Parameters
    ----------
    values : ndarray, shape (H, W)
        The map (raw, signed).
    k : float
        Percentage of pixels to keep, in (0, 100]; n = ceil(k/100 · H·W) (at least one pixel).
    absolute : bool
        Rank |values| instead of values.

    Returns
    -------
    mask : ndarray of bool, shape (H, W)
        ``values >= t`` with t the n-th largest value: ties at the threshold are all kept, so the mask
        can hold more than n pixels (a constant map selects every pixel).

    Examples
    --------
    >>> top_k_mask(np.arange(10.0).reshape(2, 5), 20).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 0, 0, 1, 1]])
    """
    arr = _as_map(values, "values")
    k = _check_k(k)
    if absolute:
        arr = np.abs(arr)
    flat = arr.ravel()
    n = max(1, math.ceil(k / 100.0 * flat.size - 1e-9))
    threshold = np.partition(flat, flat.size - n)[flat.size - n]
    return arr >= threshold


def spearman(a: np.ndarray, b: np.ndarray, *, size: tuple[int, int] | None = None, absolute: bool = False) -> float:
    """Spearman rank correlation between two maps over their pixels (after :func:`common_grid`).

    rho = cov(rank A, rank B) / (std(rank A) · std(rank B)), average ranks for ties. NaN when either
    map is constant (the correlation is undefined, and we do not pretend it is 0).
    """
    a, b = common_grid(a, b, size=size)
    if absolute:
        a, b = np.abs(a), np.abs(b)
    ra = rankdata(a.ravel())
    rb = rankdata(b.ravel())
    ra -= ra.mean()
    rb -= rb.mean()
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    if denom == 0.0:
        return float("nan")
    return float(np.clip((ra @ rb) / denom, -1.0, 1.0))


def top_k_iou(
    a: np.ndarray, b: np.ndarray, k: float = 20.0, *, size: tuple[int, int] | None = None, absolute: bool = False
) -> float:
    """IoU of the two maps' top-``k`` % regions (see :func:`top_k_mask`), on a common grid."""
    a, b = common_grid(a, b, size=size)
    ma = top_k_mask(a, k, absolute=absolute)
    mb = top_k_mask(b, k, absolute=absolute)
    union = np.logical_or(ma, mb).sum()
    return float(np.logical_and(ma, mb).sum() / union) if union else float("nan")


def pointing_game(
    a: np.ndarray, b: np.ndarray, k: float = 20.0, *, size: tuple[int, int] | None = None, absolute: bool = False
) -> bool:
    """Whether the peak of map ``a`` falls inside map ``b``'s top-``k`` % region.

    The peak is the first maximum in row-major order on the common grid.
    """
    a, b = common_grid(a, b, size=size)
    if absolute:
        a = np.abs(a)
    peak = np.unravel_index(int(np.argmax(a)), a.shape)
    return bool(top_k_mask(b, k, absolute=absolute)[peak])


@dataclass(frozen=True)
class AgreementMatrix:
    """All-pairs agreement over named maps.

    ``spearman`` and ``iou`` are symmetric (n, n) float arrays with 1 on the diagonal (NaN for constant
    maps); ``pointing[i, j]`` is 1.0 if map i's peak lies in map j's top-k % region, else 0.0.
    """

    names: tuple[str, ...]
    spearman: np.ndarray
    iou: np.ndarray
    pointing: np.ndarray
    k: float
    size: tuple[int, int]
    absolute: bool

    METRICS = ("spearman", "iou", "pointing")

    def metric(self, name: str) -> np.ndarray:
        """One of the three matrices by name."""
        if name not in self.METRICS:
            raise ValueError(f"metric: unknown {name!r}; known: {', '.join(self.METRICS)}")
        return getattr(self, name)

    def rows(self) -> list[dict]:
        """Long-format rows (map_a, map_b, spearman, top_k_iou, pointing_a_in_b) for tables and CSV."""
        out = []
        for i, a in enumerate(self.names):
            for j, b in enumerate(self.names):
                if i == j:
                    continue
                out.append(
                    {
                        "map_a": a,
                        "map_b": b,
                        "spearman": float(self.spearman[i, j]),
                        f"top_{self.k:g}pct_iou": float(self.iou[i, j]),
                        "pointing_a_in_b": bool(self.pointing[i, j]),
                    }
                )
        return out


def agreement_matrix(
    maps: Mapping[str, np.ndarray],
    *,
    k: float = 20.0,
    size: tuple[int, int] | None = None,
    absolute: bool = False,
) -> AgreementMatrix:
    """Spearman, top-``k`` % IoU and pointing game for every pair of named maps, on one common grid.

    Parameters
    ----------
    maps : mapping of str to ndarray (H_i, W_i)
        At least two maps; they may differ in size (see :func:`common_grid`).
    k : float
        Top-k percentage for IoU and the pointing game.
    size : (H, W), optional
        The common grid; default the smallest height and width among the maps.
    absolute : bool
        Compare |map| instead of the signed maps.
    """
    if len(maps) < 2:
        raise ValueError(f"maps: need at least two maps to compare, got {len(maps)}")
    k = _check_k(k)
    names = tuple(str(n) for n in maps)
    grids = common_grid(*maps.values(), size=size)
    if absolute:
        grids = tuple(np.abs(g) for g in grids)
    n = len(names)
    masks = [top_k_mask(g, k) for g in grids]
    peaks = [np.unravel_index(int(np.argmax(g)), g.shape) for g in grids]
    ranks = [rankdata(g.ravel()) for g in grids]
    ranks = [r - r.mean() for r in ranks]
    norms = [math.sqrt(float(r @ r)) for r in ranks]
    rho = np.full((n, n), np.nan)
    iou = np.full((n, n), np.nan)
    hit = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if j >= i:
                denom = norms[i] * norms[j]
                rho[i, j] = rho[j, i] = np.clip(ranks[i] @ ranks[j] / denom, -1, 1) if denom else np.nan
                union = np.logical_or(masks[i], masks[j]).sum()
                iou[i, j] = iou[j, i] = np.logical_and(masks[i], masks[j]).sum() / union if union else np.nan
            hit[i, j] = float(masks[j][peaks[i]])
    return AgreementMatrix(
        names=names,
        spearman=rho,
        iou=iou,
        pointing=hit,
        k=k,
        size=tuple(int(s) for s in grids[0].shape),
        absolute=absolute,
    )
