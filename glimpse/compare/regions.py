"""Visual complexity inside vs outside a salient region, and the complexity maps the Compare page shows.

The features follow "Complexity in Complexity" (Sarıtaş, Dayan, Shen, Nath, arXiv 2501.15890):
scales s = 1, 2, 4, 8 with weights w_s = 0.4, 0.3, 0.2, 0.1.

Spatial maps (what is drawn)
----------------------------
Both come from :mod:`glimpse.complexity.maps`, the library that computes the paper's features, so a map
here is the same array the Complexity page draws:

* ``msg_scale_maps``: :func:`glimpse.complexity.maps.gradient_maps`, the channel-mean Sobel magnitude of
  each bilinear pyramid level (OpenCV's INTER_LINEAR and BORDER_REFLECT_101); its mean is that scale's MSG term.
* ``colour_density_map``: :func:`glimpse.complexity.maps.colour_maps` at scale 1 (distinct ``bits``-bit colours
  per ``block`` × ``block`` tile) divided by the tile's pixel count (so 1.0 = every pixel a different colour).

Region features (what is tabulated)
-----------------------------------
R = the top-k % pixels of the saliency map (resampled bilinearly to the image size; see
:func:`glimpse.map_metrics.top_k_mask`, ties at the cut kept), R' its complement.

* MSG(R) = Σ_s w_s · mean_{p ∈ R} M_s↑(p), with M_s↑ the scale-s magnitude map resized bilinearly back to
  H × W. MSG(R) + MSG(R') weighted by area is (to interpolation error) the image's MSG.
* MUC_b(R) = Σ_s w_s · |{ q_b(A_s(p)) : p ∈ R_s }| where A_s is MUC's area pyramid level
  (:func:`glimpse.complexity.pyramid.area_resize`, OpenCV's INTER_AREA), R_s = the pixels of that level at least
  half inside R (the mask resized by the same rule), and q_b keeps the top b bits of each channel.
  Distinct-colour counts grow with area, so the table also gives the scale-1 density |colours in R| / |R| · 1000 (colours per thousand pixels), which is the fair comparison
  when R is much smaller than R'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from glimpse.complexity.features import colour_codes
from glimpse.complexity.maps import colour_maps, gradient_maps
from glimpse.complexity.pyramid import SCALES, WEIGHTS, area_pyramid, area_resize, check_image, to_batch
from glimpse.map_metrics import top_k_mask
from glimpse.resample import resample

__all__ = ["RegionComplexity", "colour_density_map", "msg_scale_maps", "region_complexity"]

#: Channel-mean Sobel magnitude per scale, float32 (H // s, W // s): the complexity library's gradient maps.
msg_scale_maps = gradient_maps


def colour_density_map(image: np.ndarray, *, bits: int = 4, block: int = 8) -> np.ndarray:
    """Distinct quantised colours per tile / tile pixels, shape (ceil(H / block), ceil(W / block)), float32.

    Examples
    --------
    >>> colour_density_map(np.zeros((8, 8, 3), np.uint8)).tolist()
    [[0.015625]]
    """
    block = int(block)
    if block < 2:
        raise ValueError(f"block: expected a tile side of at least 2 pixels, got {block}")
    arr = check_image(image)
    counts = colour_maps(arr, bits=bits, window=block, scales=(1,))[0]
    h, w = arr.shape[:2]
    # edge tiles hold only their real pixels
    rows = np.minimum(block, h - block * np.arange(counts.shape[0]))
    cols = np.minimum(block, w - block * np.arange(counts.shape[1]))
    return (counts / np.outer(rows, cols)).astype(np.float32)


@dataclass(frozen=True)
class RegionComplexity:
    """MSG and MUC_b of the top-k % salient region R and of the rest (see the module docstring)."""

    k: float
    bits: int
    fraction: float  # |R| / (H·W) actually selected (ties can make it exceed k %)
    msg_inside: float
    msg_outside: float
    muc_inside: float
    muc_outside: float
    colours_per_kpx_inside: float
    colours_per_kpx_outside: float

    def rows(self) -> list[dict]:
        """A small table: feature, inside, outside."""
        return [
            {"feature": "MSG", "inside": self.msg_inside, "outside": self.msg_outside},
            {"feature": f"MUC{self.bits}", "inside": self.muc_inside, "outside": self.muc_outside},
            {
                "feature": f"colours per 1000 px ({self.bits} bits)",
                "inside": self.colours_per_kpx_inside,
                "outside": self.colours_per_kpx_outside,
            },
            {"feature": "area fraction", "inside": self.fraction, "outside": 1.0 - self.fraction},
        ]


def _distinct(codes: np.ndarray) -> int:
    return int(np.unique(codes).size)


def region_complexity(
    image: np.ndarray, saliency: np.ndarray, *, k: float = 20.0, bits: int = 4, absolute: bool = False
) -> RegionComplexity:
    """MSG and MUC_b inside vs outside the top-``k`` % region of ``saliency``.

    Parameters
    ----------
    image : ndarray, uint8 (H, W, 3)
    saliency : ndarray (h, w)
        Any map; resampled bilinearly to (H, W) before its top-k % region is taken.
    k : float
        Percentage of pixels in the salient region, (0, 100).
    bits : int
        Bits per channel for MUC (1..8).
    absolute : bool
        Rank |saliency| (both signs as evidence).

    Returns
    -------
    RegionComplexity
        NaN for a side that is empty (e.g. k = 100 leaves no outside).
    """
    arr = check_image(image)
    h, w = arr.shape[:2]
    mask = top_k_mask(resample(saliency, (h, w)), k, absolute=absolute)
    inside, outside = mask, ~mask
    msg_in = msg_out = 0.0
    for weight, m in zip(WEIGHTS, msg_scale_maps(arr)):
        up = resample(m, (h, w))
        msg_in += weight * (float(up[inside].mean()) if inside.any() else np.nan)
        msg_out += weight * (float(up[outside].mean()) if outside.any() else np.nan)
    muc_in = muc_out = 0.0
    with torch.inference_mode():
        levels = area_pyramid(to_batch([arr], torch.device("cpu")))
        # 255 where R: a level pixel is in R_s when its area mean rounds to >= 128, i.e. at least half of it is in R
        mask_batch = torch.from_numpy(mask.astype(np.uint8) * 255)[None, None]
        regions = [area_resize(mask_batch, s)[0, 0].numpy() >= 128 for s in SCALES]
    codes = [colour_codes(level[0].permute(1, 2, 0).numpy(), bits) for level in levels]
    for weight, level_codes, region in zip(WEIGHTS, codes, regions):
        muc_in += weight * _distinct(level_codes[region])
        muc_out += weight * _distinct(level_codes[~region])
    codes = codes[0]  # the scale-1 level is the image itself
    n_in, n_out = int(inside.sum()), int(outside.sum())
    return RegionComplexity(
        k=float(k),
        bits=int(bits),
        fraction=n_in / (h * w),
        msg_inside=msg_in,
        msg_outside=msg_out,
        muc_inside=round(muc_in, 2) if n_in else np.nan,
        muc_outside=round(muc_out, 2) if n_out else np.nan,
        colours_per_kpx_inside=_distinct(codes[inside]) / n_in * 1000 if n_in else np.nan,
        colours_per_kpx_outside=_distinct(codes[outside]) / n_out * 1000 if n_out else np.nan,
    )
