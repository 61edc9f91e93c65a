"""Canny edge density, the reference baseline feature of Sarıtaş et al. (2025), rebuilt in numpy/scipy.

Reference (scripts/algorithms.py of arXiv:2501.15890): grey = BT.601 luma of the 8-bit image; 5 x 5 Gaussian blur
(OpenCV's sigma-0 table [1, 4, 6, 4, 1] / 16); Canny (Canny 1986, IEEE TPAMI 8(6)) with
``low = int(max(0, 0.67 * m))`` and ``high = int(min(255, 1.33 * m))``, m the median of the blurred image;
density = edge pixels / all pixels. The steps follow OpenCV's implementation (L1 gradient |Sx| + |Sy| of a 3 x 3
Sobel with replicated border, non-maximum suppression in four directions split at 22.5 / 67.5 degrees, hysteresis
over 8-connected pixels) and its fixed-point grey conversion and blur, so the edge map equals OpenCV's.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from glimpse.complexity.pyramid import check_image

_TAN22 = np.tan(np.deg2rad(22.5))
_TAN67 = np.tan(np.deg2rad(67.5))


def grey(image: np.ndarray) -> np.ndarray:
    """uint8 BT.601 luma with OpenCV's fixed-point rounding: ``(9798 R + 19235 G + 3735 B + 2^14) >> 15``."""
    rgb = image.astype(np.int32)
    return ((rgb[..., 0] * 9798 + rgb[..., 1] * 19235 + rgb[..., 2] * 3735 + (1 << 14)) >> 15).astype(np.uint8)


def gaussian_blur5(img: np.ndarray) -> np.ndarray:
    """OpenCV's ``GaussianBlur(img, (5, 5), 0)`` on uint8, bit-exact.

    With sigma 0 and a 5-tap kernel OpenCV uses its fixed table [1, 4, 6, 4, 1] / 16 (not a sampled Gaussian)
    and rounds the separable fixed-point sum half up: ``(sum_ij k_i k_j p + 128) >> 8``; border reflect-101.
    """
    k = np.array([1, 4, 6, 4, 1], dtype=np.int64)
    total = ndimage.correlate1d(img.astype(np.int64), k, axis=0, mode="mirror")
    total = ndimage.correlate1d(total, k, axis=1, mode="mirror")
    return ((total + 128) >> 8).astype(np.uint8)


def canny_edges(img: np.ndarray, low: float, high: float) -> np.ndarray:
    """Boolean Canny edge map of a uint8 (H, W) image with OpenCV's conventions (L1 magnitude, floor thresholds)."""
    f = img.astype(np.int32)
    p = np.pad(f, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    mag = np.abs(gx) + np.abs(gy)
    lo, hi = int(np.floor(low)), int(np.floor(high))
    m = np.pad(mag, 1)  # zeros outside, as OpenCV's magnitude buffer
    c = m[1:-1, 1:-1]
    left, right, up, down = m[1:-1, :-2], m[1:-1, 2:], m[:-2, 1:-1], m[2:, 1:-1]
    ax, ay = np.abs(gx).astype(np.float64), np.abs(gy).astype(np.float64)
    horizontal = ay < ax * _TAN22
    vertical = ay > ax * _TAN67
    same_sign = (gx ^ gy) >= 0
    # Diagonal neighbours: same signs -> (y-1, x-1) and (y+1, x+1), opposite -> (y-1, x+1) and (y+1, x-1).
    d1 = np.where(same_sign, m[:-2, :-2], m[:-2, 2:])
    d2 = np.where(same_sign, m[2:, 2:], m[2:, :-2])
    peak = np.where(
        horizontal, (c > left) & (c >= right), np.where(vertical, (c > up) & (c >= down), (c > d1) & (c > d2))
    )
    candidate = peak & (mag > lo)
    strong = candidate & (mag > hi)
    labels, n = ndimage.label(candidate, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return np.zeros_like(candidate)
    keep = np.zeros(n + 1, dtype=bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False
    return keep[labels]


def edge_map(image: np.ndarray) -> np.ndarray:
    """Boolean (H, W) Canny edge map of the reference's edge density (see the module docstring)."""
    arr = check_image(image)
    blurred = gaussian_blur5(grey(arr))
    median = float(np.median(blurred))
    return canny_edges(blurred, int(max(0.0, 0.67 * median)), int(min(255.0, 1.33 * median)))


def edge_density(image: np.ndarray) -> float:
    """Fraction of Canny edge pixels, the reference's baseline feature.

    ``density = |edges| / (H W)``, Canny thresholds ``0.67 m`` and ``1.33 m`` (truncated to integers, m the median
    of the 5 x 5 Gaussian-blurred grey image). Sarıtaş et al., arXiv:2501.15890 (2025).

    Parameters
    ----------
    image : np.ndarray
        uint8 (H, W, 3) or (H, W), at least 8 x 8.

    Returns
    -------
    float
        In [0, 1]; 0 for a constant image.

    Examples
    --------
    >>> import numpy as np
    >>> edge_density(np.zeros((16, 16, 3), np.uint8))
    0.0
    """
    edges = edge_map(image)
    return float(edges.mean())
