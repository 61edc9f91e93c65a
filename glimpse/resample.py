"""Bilinear resampling of a map for computation, in torch's convention (shared by the metrics).

``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``: half-pixel centres and no
anti-aliasing, so a coarse map compared or ranked at another resolution is interpolated, not smoothed.
What is drawn on screen is resized by :func:`glimpse.display.resize_map` (Pillow's, which anti-aliases
when shrinking).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resample(values: np.ndarray, size: tuple[int, int], dtype: type = np.float64) -> np.ndarray:
    """Bilinear resample of a float map to ``size`` = (H, W) (half-pixel centres, no anti-aliasing).

    >>> resample(np.array([[0.0, 1.0]]), (1, 4)).tolist()
    [[0.0, 0.25, 0.75, 1.0]]
    """
    arr = np.asarray(values, dtype=dtype)
    if arr.shape == tuple(size):
        return arr
    t = torch.from_numpy(np.ascontiguousarray(arr))[None, None]
    out = F.interpolate(t, size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)
    return out[0, 0].numpy()
