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

from glimpse.images import as_rgb

#: Scales and weights of the paper's multi-scale features.
SCALES: tuple[int, ...] = (1, 2, 4, 8)
WEIGHTS: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)

#: The smallest side the coarsest scale (1/8) can be computed on.
MIN_SIDE = SCALES[-1]


def check_image(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Validate an 8-bit image and return it as uint8 (H, W, 3) (:func:`glimpse.images.as_rgb`), at least
    :data:`MIN_SIDE` pixels a side for the 1/8 scale."""
    return as_rgb(image, name=name, min_side=MIN_SIDE, why=" for the 1/8 scale")


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
        if h == oh * s and w == ow * s:
            # Integer factor: the half-pixel sample of output d sits midway between source pixels s*d + s/2 - 1
            # and s*d + s/2, so the level is the mean of four strided views (pairwise sums keep flat regions flat).
            a, b = s // 2 - 1, s // 2
            top = x[..., a::s, a::s] + x[..., a::s, b::s]
            bottom = x[..., b::s, a::s] + x[..., b::s, b::s]
            out.append((top + bottom) * 0.25)
            continue
        i0, i1, ty = _linear_taps(h, oh, x.device)
        j0, j1, tx = _linear_taps(w, ow, x.device)
        # Rows gather along H (contiguous rows); columns along the leading axis of a transposed copy.
        top, bottom = torch.index_select(x, 2, i0), torch.index_select(x, 2, i1)
        rows = (top + ty[:, None] * (bottom - top)).permute(3, 0, 1, 2).contiguous()  # (W, B, C, oh)
        left, right = torch.index_select(rows, 0, j0), torch.index_select(rows, 0, j1)
        level = left + tx[:, None, None, None] * (right - left)  # (ow, B, C, oh)
        out.append(level.permute(1, 2, 3, 0).contiguous())
    return out


def _linear_taps(src: int, dst: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_linear_table` as tensors on ``device``."""
    return tuple(torch.tensor(a, device=device) for a in _linear_table(src, dst))


@functools.lru_cache(maxsize=64)
def _linear_table(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-pixel bilinear taps for one axis: left index, right index, fraction (clamped at the borders).

    ``x = (d + 0.5) * src / dst - 0.5``; the output is written ``a + t * (b - a)`` so a flat region stays exactly
    flat (OpenCV's value 0 for a constant image) while matching ``interpolate(mode="bilinear")`` elsewhere.
    Read-only (cached).
    """
    pos = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    pos = np.clip(pos, 0.0, src - 1)
    left = np.floor(pos).astype(np.int64)
    right = np.minimum(left + 1, src - 1)
    frac = (pos - left).astype(np.float32)
    for a in (left, right, frac):
        a.flags.writeable = False
    return left, right, frac


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


def area_resize(
    batch: torch.Tensor | None,
    s: int,
    *,
    transposed: torch.Tensor | None = None,
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """OpenCV INTER_AREA downscale of a uint8 (B, C, H, W) batch to (H // s, W // s), as uint8.

    ``transposed`` may pass ``batch`` as float32 (W, B, C, H), shared by several fractional scales; with it,
    ``batch`` may be None when ``size`` gives (H, W) and the factor is fractional.
    """
    if s == 1:
        return batch
    h, w = size if size is not None else batch.shape[-2:]
    oh, ow = scale_size(h, w, s)
    if h == oh * s and w == ow * s:
        # Integer factor: OpenCV's 2 x 2 SIMD path rounds halves up ((sum + 2) >> 2), its general path multiplies
        # the block sum by 1/area in float and rounds half to even.
        # float32 block sums are exact (at most 255 * 64), and with a power-of-two area so is the division.
        total = F.avg_pool2d(batch.to(torch.float32), s, divisor_override=1)
        if s == 2:
            return torch.floor((total + 2.0) * 0.25).to(torch.uint8)
        return torch.round(total * (1.0 / (s * s))).to(torch.uint8)
    # Fractional factor: OpenCV accumulates the overlap-weighted taps one by one in float32, first along each
    # row, then over rows; repeating that order (not a float64 sum) reproduces its rounding to uint8.
    # Gathers run along the leading axis of a transposed copy, where each tap is a contiguous block copy.
    xt = transposed if transposed is not None else _transposed(batch)  # (W, B, C, H)
    iy, wy = _area_taps(h, oh, xt.device)
    ix, wx = _area_taps(w, ow, xt.device)
    rows = torch.zeros((ow, *xt.shape[1:]), dtype=torch.float32, device=xt.device)
    for k in range(ix.shape[1]):
        rows.add_(torch.index_select(xt, 0, ix[:, k]).mul_(wx[:, k, None, None, None]))
    rows = rows.permute(3, 0, 1, 2).contiguous()  # (H, ow, B, C)
    out = torch.zeros((oh, *rows.shape[1:]), dtype=torch.float32, device=rows.device)
    for k in range(iy.shape[1]):
        out.add_(torch.index_select(rows, 0, iy[:, k]).mul_(wy[:, k, None, None, None]))
    out = out.permute(2, 3, 0, 1).contiguous()  # (B, C, oh, ow)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def _transposed(batch: torch.Tensor) -> torch.Tensor:
    """float32 (W, B, C, H) copy of a (B, C, H, W) batch."""
    return batch.permute(3, 0, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)


def area_pyramid(batch: torch.Tensor) -> list[torch.Tensor]:
    """uint8 pyramid for MUC: (B, 3, H // s, W // s) for s in :data:`SCALES`; shared by every bit depth."""
    h, w = batch.shape[-2:]
    fractional = any(h != (h // s) * s or w != (w // s) * s for s in SCALES)
    transposed = _transposed(batch) if fractional else None
    return [area_resize(batch, s, transposed=transposed) for s in SCALES]


def to_batch(images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """Stack same-shaped uint8 (H, W, 3) images into a uint8 (B, 3, H, W) tensor on ``device``."""
    arr = np.stack(images)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous().to(device)
