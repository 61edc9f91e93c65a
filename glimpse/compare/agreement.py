"""Agreement between two explanation maps: rank correlation, top-k % overlap, pointing game.

Any two maps can be compared — saliency maps of different methods, a prompt word's cross-attention map
and a classifier's Grad-CAM, a complexity map — once both are resampled to one grid. The three scores
answer different questions:

* Spearman rank correlation: do the maps order *all* pixels alike?
* Top-k % IoU: do the maps' most salient k % of pixels coincide? IoU = |T_k(A) ∩ T_k(B)| / |T_k(A) ∪ T_k(B)|.
* Pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016, with the
  annotated box replaced by the other map's top-k % region): hit = 1 if argmax_p A(p) ∈ T_k(B).
  It is asymmetric: ``pointing[i, j]`` asks whether map i's peak falls in map j's region.

Spearman's ρ, the top-k % region T_k (ties at the cut kept, so a constant map's region is the whole image)
and the IoU are :mod:`glimpse.map_metrics`'s; this module puts the maps on one grid first.

Maps are compared as they are (raw, signed) unless ``absolute=True`` takes |map| first: for signed
gradient maps both signs mark evidence, so ``absolute`` is usually the fair comparison; for CAMs and
attention maps (non-negative) it changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from glimpse import map_metrics
from glimpse.map_metrics import check_map, top_k_mask
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


def common_grid(*maps: np.ndarray, size: tuple[int, int] | None = None) -> tuple[np.ndarray, ...]:
    """Resample ``maps`` to one grid: ``size`` if given, else the smallest height and width among them.

    Downsampling to the coarsest map avoids inventing detail the coarse map does not have (a 7×7 CAM
    compared at 224×224 would count its interpolation as agreement).
    """
    arrays = [check_map(m, f"maps[{i}]") for i, m in enumerate(maps)]
    if size is None:
        size = (min(a.shape[0] for a in arrays), min(a.shape[1] for a in arrays))
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size: expected (H, W) with positive sides, got {size}")
    return tuple(resample(a, size) for a in arrays)


def spearman(a: np.ndarray, b: np.ndarray, *, size: tuple[int, int] | None = None, absolute: bool = False) -> float:
    """Spearman rank correlation between two maps over their pixels (:func:`glimpse.map_metrics.spearman`,
    after :func:`common_grid`); NaN when either map is constant."""
    a, b = common_grid(a, b, size=size)
    if absolute:
        a, b = np.abs(a), np.abs(b)
    return map_metrics.spearman(a, b)


def top_k_iou(
    a: np.ndarray, b: np.ndarray, k: float = 20.0, *, size: tuple[int, int] | None = None, absolute: bool = False
) -> float:
    """IoU of the two maps' top-``k`` % regions (see :func:`top_k_mask`), on a common grid."""
    a, b = common_grid(a, b, size=size)
    return map_metrics.iou(top_k_mask(a, k, absolute=absolute), top_k_mask(b, k, absolute=absolute))


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
    k = float(k)
    names = tuple(str(n) for n in maps)
    grids = common_grid(*maps.values(), size=size)
    if absolute:
        grids = tuple(np.abs(g) for g in grids)
    masks = [top_k_mask(g, k) for g in grids]
    peaks = [np.unravel_index(int(np.argmax(g)), g.shape) for g in grids]
    hit = np.array([[float(mask[peak]) for mask in masks] for peak in peaks])
    return AgreementMatrix(
        names=names,
        spearman=map_metrics.spearman_matrix(grids),
        iou=map_metrics.iou_matrix(masks),
        pointing=hit,
        k=k,
        size=tuple(int(s) for s in grids[0].shape),
        absolute=absolute,
    )
