"""Visual complexity inside vs outside a salient region, and the complexity maps the Compare page shows.

The features follow "Complexity in Complexity" (Sarıtaş, Dayan, Shen, Nath, arXiv 2501.15890):
scales s = 1, 2, 4, 8 with weights w_s = 0.4, 0.3, 0.2, 0.1.

Spatial maps (what is drawn)
----------------------------
* ``msg_scale_maps``: at each scale, the image in [0, 1] resized bilinearly (half-pixel centres, no
  anti-aliasing, as OpenCV's INTER_LINEAR) to (H // s, W // s); per channel the 3×3 Sobel gradients
  (borders reflected without repeating the edge, as OpenCV's BORDER_REFLECT_101) and their magnitude
  hypot(gx, gy); the map is the mean over the three channels. Its mean is that scale's MSG term.
* ``colour_density_map``: quantise each channel to ``bits`` bits (v >> (8 - bits)), cut the image into
  ``block`` × ``block`` tiles, and count the distinct quantised colours per tile, divided by the tile's
  pixel count (so 1.0 = every pixel a different colour).

Region features (what is tabulated)
-----------------------------------
R = the top-k % pixels of the saliency map (resampled bilinearly to the image size; see
:func:`glimpse.compare.agreement.top_k_mask`), R' its complement.

* MSG(R) = Σ_s w_s · mean_{p ∈ R} M_s↑(p), with M_s↑ the scale-s magnitude map resized bilinearly back to
  H × W. MSG(R) + MSG(R') weighted by area is (to interpolation error) the image's MSG.
* MUC_b(R) = Σ_s w_s · |{ q_b(A_s(p)) : p ∈ R_s }| where A_s averages s × s blocks (rounded to uint8; rows
  and columns beyond a multiple of s are dropped), R_s = blocks at least half inside R, and q_b keeps the
  top b bits of each channel. Distinct-colour counts grow with area, so the table also gives the
  scale-1 density |colours in R| / |R| · 1000 (colours per thousand pixels), which is the fair comparison
  when R is much smaller than R'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from glimpse.compare.agreement import resample, top_k_mask

SCALES = (1, 2, 4, 8)
WEIGHTS = (0.4, 0.3, 0.2, 0.1)

__all__ = ["RegionComplexity", "colour_density_map", "msg_scale_maps", "region_complexity"]


def _check_image(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image: expected uint8 RGB (H, W, 3), got {arr.dtype} {arr.shape}")
    if min(arr.shape[:2]) < 8:
        raise ValueError(f"image: need at least 8×8 pixels for scale 8, got {arr.shape[1]}×{arr.shape[0]}")
    return arr


def _sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """hypot of the 3×3 Sobel gradients of (C, 1, H, W), computed separably: smoothing [1, 2, 1] then a
    central difference, so a flat region gives exactly 0 (a 3×3 convolution leaves rounding residue)."""
    p = F.pad(x, (1, 1, 1, 1), mode="reflect")[:, 0]
    rows = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]  # vertical smoothing
    cols = p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]  # horizontal smoothing
    gx = rows[:, :, 2:] - rows[:, :, :-2]
    gy = cols[:, 2:] - cols[:, :-2]
    return torch.hypot(gx, gy)


def msg_scale_maps(image: np.ndarray) -> tuple[np.ndarray, ...]:
    """Channel-mean Sobel magnitude at each scale: arrays of shape (H // s, W // s), float32.

    Examples
    --------
    >>> maps = msg_scale_maps(np.full((16, 16, 3), 128, np.uint8))
    >>> [m.shape for m in maps], float(maps[0].max())
    ([(16, 16), (8, 8), (4, 4), (2, 2)], 0.0)
    """
    arr = _check_image(image)
    h, w = arr.shape[:2]
    x = torch.from_numpy(np.array(arr)).permute(2, 0, 1)[:, None].float() / 255.0  # (3, 1, H, W): channels alike
    out = []
    with torch.no_grad():
        for s in SCALES:
            xs = x if s == 1 else F.interpolate(x, size=(h // s, w // s), mode="bilinear", align_corners=False)
            out.append(_sobel_magnitude(xs).mean(0).numpy().astype(np.float32))
    return tuple(out)


def _quantise(arr: np.ndarray, bits: int) -> np.ndarray:
    if not 1 <= int(bits) <= 8:
        raise ValueError(f"bits: expected 1..8 bits per channel, got {bits}")
    q = (arr >> (8 - bits)).astype(np.int32)
    return (q[..., 0] << (2 * bits)) | (q[..., 1] << bits) | q[..., 2]


def colour_density_map(image: np.ndarray, *, bits: int = 4, block: int = 8) -> np.ndarray:
    """Distinct quantised colours per tile / tile pixels, shape (ceil(H / block), ceil(W / block)), float32."""
    arr = _check_image(image)
    if int(block) < 2:
        raise ValueError(f"block: expected a tile side of at least 2 pixels, got {block}")
    codes = _quantise(arr, bits)
    h, w = codes.shape
    bh, bw = -(-h // block), -(-w // block)
    # pad with -1 (never a colour) so edge tiles count only their real pixels
    padded = np.full((bh * block, bw * block), -1, dtype=np.int32)
    padded[:h, :w] = codes
    tiles = padded.reshape(bh, block, bw, block).transpose(0, 2, 1, 3).reshape(bh, bw, -1)
    tiles = np.sort(tiles, axis=-1)
    real = tiles >= 0
    distinct = (np.diff(tiles, axis=-1) != 0) & real[..., 1:]
    count = distinct.sum(-1) + real[..., 0]
    return (count / real.sum(-1)).astype(np.float32)


def _block_mean(arr: np.ndarray, s: int) -> np.ndarray:
    h, w = arr.shape[0] // s * s, arr.shape[1] // s * s
    a = arr[:h, :w].astype(np.float64)
    return a.reshape(h // s, s, w // s, s, *arr.shape[2:]).mean(axis=(1, 3))


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
    arr = _check_image(image)
    h, w = arr.shape[:2]
    mask = top_k_mask(resample(saliency, (h, w)), k, absolute=absolute)
    inside, outside = mask, ~mask
    msg_in = msg_out = 0.0
    for weight, m in zip(WEIGHTS, msg_scale_maps(arr)):
        up = resample(m, (h, w))
        msg_in += weight * (float(up[inside].mean()) if inside.any() else np.nan)
        msg_out += weight * (float(up[outside].mean()) if outside.any() else np.nan)
    muc_in = muc_out = 0.0
    for weight, s in zip(WEIGHTS, SCALES):
        small = arr if s == 1 else np.round(_block_mean(arr, s)).astype(np.uint8)
        region = mask if s == 1 else _block_mean(mask.astype(np.float64), s) >= 0.5
        codes = _quantise(small, bits)
        muc_in += weight * _distinct(codes[region])
        muc_out += weight * _distinct(codes[~region])
    codes = _quantise(arr, bits)
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
