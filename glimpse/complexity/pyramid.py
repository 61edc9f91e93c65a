"""The two image pyramids behind MSG and MUC, built once per batch of same-sized images.

Sarıtaş, Dayan, Shen & Nath, "Complexity in Complexity: Understanding Visual Complexity Through Structure,
Color, and Surprise", arXiv:2501.15890 (2025), scripts/algorithms.py. Both features look at the image at
scales s = 1, 2, 4, 8 (size ``(W // s, H // s)``, each resized from the original, not from the previous level)
and combine per-scale values with weights 0.4, 0.3, 0.2, 0.1.

- MSG resizes the float image in [0, 1] with OpenCV's default bilinear rule (half-pixel centres, no
  anti-aliasing), the rule of ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``.
- MUC resizes the uint8 image with OpenCV's area rule (INTER_AREA) and rounds back to uint8. For integer
  factors that is the mean of s x s blocks; when ``W`` or ``H`` is not divisible by s the factor is fractional and
  every output pixel is the overlap-weighted mean of the source pixels it covers. The rounding mirrors OpenCV:
  2 x 2 blocks round halves up (its SIMD path computes ``(sum + 2) >> 2``), every other case rounds half to even.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

#: Scales and weights of the paper's multi-scale features.
SCALES: tuple[int, ...] = (1, 2, 4, 8)
WEIGHTS: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)

#: The smallest side the coarsest scale (1/8) can be computed on.
MIN_SIDE = SCALES[-1]


def check_image(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Validate an 8-bit image and return it as uint8 (H, W, 3); greyscale (H, W) is repeated to 3 channels."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"{name}: expected uint8 pixels (0-255), got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"{name}: expected shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    arr = arr[..., :3]
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"{name}: needs at least {MIN_SIDE}x{MIN_SIDE} pixels for the 1/8 scale, got {w}x{h}")
    return np.ascontiguousarray(arr)


def scale_size(h: int, w: int, s: int) -> tuple[int, int]:
    """(H // s, W // s): the reference's ``new_size = (W // s, H // s)``."""
    return h // s, w // s


def bilinear_pyramid(batch: torch.Tensor) -> list[torch.Tensor]:
    """Float pyramid for MSG.

    Parameters
    ----------
    batch : torch.Tensor
        uint8 (B, 3, H, W).

    Returns
    -------
    list of torch.Tensor
        float32 (B, 3, H // s, W // s) in [0, 1] for s in :data:`SCALES`.
    """
    x = batch.to(torch.float32) / 255.0
    h, w = x.shape[-2:]
    out = [x]
    for s in SCALES[1:]:
        oh, ow = scale_size(h, w, s)
        i0, i1, ty = _linear_taps(h, oh, x.device)
        j0, j1, tx = _linear_taps(w, ow, x.device)
        rows = x[..., i0, :] + ty[:, None] * (x[..., i1, :] - x[..., i0, :])
        out.append(rows[..., j0] + tx * (rows[..., j1] - rows[..., j0]))
    return out


def _linear_taps(src: int, dst: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Half-pixel bilinear taps for one axis: left index, right index, fraction (clamped at the borders).

    ``x = (d + 0.5) * src / dst - 0.5``; the output is written ``a + t * (b - a)`` so a flat region stays exactly
    flat (OpenCV's value 0 for a constant image) while matching ``interpolate(mode="bilinear")`` elsewhere.
    """
    pos = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    pos = np.clip(pos, 0.0, src - 1)
    left = np.floor(pos).astype(np.int64)
    right = np.minimum(left + 1, src - 1)
    frac = (pos - left).astype(np.float32)
    return (
        torch.from_numpy(left).to(device),
        torch.from_numpy(right).to(device),
        torch.from_numpy(frac).to(device),
    )


def _area_taps(src: int, dst: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    index, weight = _area_table(src, dst)
    return torch.tensor(index, device=device), torch.tensor(weight, device=device)


@functools.lru_cache(maxsize=64)
def _area_table(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's area table for one axis as (dst, K) source indices and weights (K = taps per output).

    Weight = overlap of the source pixel with the output cell / cell width, rounded to float32 as OpenCV
    stores it. Unused taps point at pixel 0 with weight 0.
    """
    scale = src / dst
    taps = int(np.ceil(scale)) + 1
    index = np.zeros((dst, taps), dtype=np.int64)
    weight = np.zeros((dst, taps), dtype=np.float32)
    for d in range(dst):
        f1 = d * scale
        f2 = f1 + scale
        cell = min(scale, src - f1)
        s1, s2 = int(np.ceil(f1)), int(np.floor(f2))
        s2 = min(s2, src - 1)
        s1 = min(s1, s2)
        entries = []
        if s1 - f1 > 1e-3:
            entries.append((s1 - 1, (s1 - f1) / cell))
        entries.extend((k, 1.0 / cell) for k in range(s1, s2))
        if f2 - s2 > 1e-3:
            entries.append((s2, min(f2 - s2, 1.0, cell) / cell))
        for k, (i, a) in enumerate(entries):
            index[d, k] = i
            weight[d, k] = a
    index.flags.writeable = False
    weight.flags.writeable = False
    return index, weight


def area_resize(batch: torch.Tensor, s: int) -> torch.Tensor:
    """OpenCV INTER_AREA downscale of a uint8 (B, C, H, W) batch to (H // s, W // s), as uint8."""
    if s == 1:
        return batch
    h, w = batch.shape[-2:]
    oh, ow = scale_size(h, w, s)
    if h == oh * s and w == ow * s:
        # Integer factor: block sums are exact in float64; OpenCV multiplies by 1/area and rounds.
        total = F.avg_pool2d(batch.to(torch.float64), s, divisor_override=1)
        if s == 2:
            return torch.div(total + 2, 4, rounding_mode="floor").to(torch.uint8)
        return torch.round(total * (1.0 / (s * s))).clamp_(0, 255).to(torch.uint8)
    # Fractional factor: OpenCV accumulates the overlap-weighted taps one by one in float32, first along each
    # row, then over rows; repeating that order (not a float64 sum) reproduces its rounding to uint8.
    iy, wy = _area_taps(h, oh, batch.device)
    ix, wx = _area_taps(w, ow, batch.device)
    x = batch.to(torch.float32)
    rows = torch.zeros((*x.shape[:-1], ow), dtype=torch.float32, device=x.device)
    for k in range(ix.shape[1]):
        rows = rows + x[..., ix[:, k]] * wx[:, k]
    out = torch.zeros((*x.shape[:-2], oh, ow), dtype=torch.float32, device=x.device)
    for k in range(iy.shape[1]):
        out = out + rows[..., iy[:, k], :] * wy[:, k, None]
    return torch.round(out).clamp_(0, 255).to(torch.uint8)


def area_pyramid(batch: torch.Tensor) -> list[torch.Tensor]:
    """uint8 pyramid for MUC: (B, 3, H // s, W // s) for s in :data:`SCALES`; shared by every bit depth."""
    return [area_resize(batch, s) for s in SCALES]


def to_batch(images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """Stack same-shaped uint8 (H, W, 3) images into a uint8 (B, 3, H, W) tensor on ``device``."""
    arr = np.stack(images)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous().to(device)
