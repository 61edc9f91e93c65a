"""MSG and MUC_1..MUC_8 of one image on the CPU, in numpy, with integer arithmetic wherever the values are integers.

The same features as :func:`glimpse.complexity.features.complexity_batch` on other devices (same pyramids, same
rounding, same counts), written for one core: the image stays in its (H, W, 3) layout, the pyramid levels with
integer factors are integer block sums, and the Sobel filter runs on int16 in row strips that stay in the cache.

- Area pyramid (MUC): ``S_2`` = 2 x 2 block sums, ``S_4`` = 2 x 2 sums of ``S_2``, ``S_8`` likewise (uint16, exact).
  OpenCV rounds ``S_2 / 4`` halves up (its SIMD path computes ``(sum + 2) >> 2``) and ``S_4 / 16``, ``S_8 / 64``
  half to even. A scale whose factor is fractional on either axis takes OpenCV's float32 tap order
  (:func:`glimpse.complexity.pyramid._area_table`), so its rounding to uint8 is OpenCV's.
- Bilinear pyramid (MSG): with an integer factor s, output pixel d is the mean of source pixels s*d + s/2 - 1 and
  s*d + s/2 on each axis, a 2 x 2 integer sum ``T_s`` (``T_2 = S_2``); the level is ``T_s / (4 * 255)``. Since the
  Sobel filter and the magnitude are linear in the scale, the per-scale mean is ``mean |Sobel(T_s)| / (4 * 255)``,
  computed on exact integers. Fractional factors interpolate in float32.
- Colour counts: one sort of the 24-bit codes gives the 8-bit colours; every lower depth re-sorts the (much
  shorter) distinct codes of the depth above, as quantisation to b bits of the colours present equals the
  colours present after quantising.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from glimpse.complexity.pyramid import SCALES, _area_table, _linear_table, scale_size

#: Rows per Sobel strip: 3 int16 channels x ~500 columns x 48 rows keeps a strip's temporaries in L2.
STRIP_ROWS = 48


def score_image(image: np.ndarray, bits) -> tuple[np.ndarray, np.ndarray]:
    """Per-scale MSG means (4,) float64 and distinct-colour counts (len(bits), 4) int64 of a uint8 (H, W, 3) image."""
    h, w = image.shape[:2]
    per_scale = np.empty(len(SCALES), dtype=np.float64)
    counts = np.empty((len(bits), len(SCALES)), dtype=np.int64)
    sums: dict[int, np.ndarray] = {}  # s -> uint16 s x s block sums, while the factors stay integers
    shared: dict = {}  # column sums and the transposed image, shared by the fractional area levels
    for k, s in enumerate(SCALES):
        oh, ow = scale_size(h, w, s)
        integer = h == oh * s and w == ow * s
        if s == 1:
            area, linear, denom = image, image, 1.0
        elif integer:
            # An integer factor s makes s / 2 one too, so the block sums of the scale above exist.
            block = _pair_sums(sums[s // 2] if s > 2 else image)
            sums[s] = block
            area = _round_block_mean(block, s)
            linear, denom = (block if s == 2 else _tap_sums(image, s, oh, ow)), 4.0
        else:
            area = _area_fractional(image, s, oh, ow, shared)
            linear, denom = _bilinear_fractional(image, oh, ow), 1.0
        per_scale[k] = sobel_mean(linear) / (denom * 255.0)
        counts[:, k] = colour_counts(area, bits)
    return per_scale, counts


def _pair_sums(x: np.ndarray) -> np.ndarray:
    """uint16 sums of the aligned 2 x 2 blocks of an (H, W, 3) array with even H and W."""
    rows = x[0::2].astype(np.uint16)
    rows += x[1::2]
    out = rows[:, 0::2].copy()
    out += rows[:, 1::2]
    return out


def _tap_sums(image: np.ndarray, s: int, oh: int, ow: int) -> np.ndarray:
    """uint16 sums of the four bilinear taps of an integer factor s: rows and columns s*d + s/2 - 1, s*d + s/2."""
    a, b = s // 2 - 1, s // 2
    rows = image[a::s][:oh].astype(np.uint16)
    rows += image[b::s][:oh]
    out = rows[:, a::s][:, :ow].copy()
    out += rows[:, b::s][:, :ow]
    return out


def _round_block_mean(block: np.ndarray, s: int) -> np.ndarray:
    """uint8 block means with OpenCV's rounding: halves up for 2 x 2, half to even otherwise."""
    if s == 2:
        return ((block + 2) >> 2).astype(np.uint8)
    shift = 2 * (s.bit_length() - 1)  # log2(s * s)
    half = 1 << (shift - 1)
    q = block >> shift
    r = block & ((1 << shift) - 1)
    q += (r > half) | ((r == half) & (q & 1).astype(bool))
    return q.astype(np.uint8)


def _area_fractional(image: np.ndarray, s: int, oh: int, ow: int, shared: dict) -> np.ndarray:
    """OpenCV INTER_AREA to (oh, ow) when the factor is fractional on at least one axis: OpenCV's general path,
    float32 taps along each row, then over rows, in its order (so its rounding to uint8 is reproduced).

    An axis that s divides has s taps of weight 1/s, a power of two: every product and partial sum is then
    exact or rounded exactly as the plain sum is, so that axis is an integer column sum (horizontal) or a
    sequential sum of row slices (vertical) instead of s gathers. The fractional horizontal pass gathers rows
    of a transposed float32 copy, shared by the scales; the level may then come back transposed, (ow, oh, 3),
    which changes no colour count.
    """
    h, w = image.shape[:2]
    if w == ow * s:
        rows = _column_sums(image, s, shared).astype(np.float32)
        rows *= np.float32(1.0 / s)
        axis = 0
    else:
        if "transposed" not in shared:
            shared["transposed"] = _transpose(image).astype(np.float32)
        rows = _weighted_taps(shared["transposed"], *_area_table(w, ow), axis=0)  # (ow, H, 3)
        axis = 1
    if h == oh * s:
        pick = (lambda k: rows[k::s][:oh]) if axis == 0 else (lambda k: rows[:, k::s][:, :oh])
        out = pick(0) + pick(1)
        for k in range(2, s):
            out += pick(k)
        out *= np.float32(1.0 / s)
    else:
        out = _weighted_taps(rows, *_area_table(h, oh), axis=axis)
    np.rint(out, out=out)
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def _transpose(image: np.ndarray) -> np.ndarray:
    """uint8 (W, H, 3) copy of an (H, W, 3) image (torch's copy kernel is about twice numpy's for 3-byte pixels)."""
    with warnings.catch_warnings():  # a read-only array is only read here
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        source = torch.from_numpy(image)
    return source.permute(1, 0, 2).contiguous().numpy()


def _column_sums(image: np.ndarray, s: int, shared: dict) -> np.ndarray:
    """uint16 (H, W // s, 3) sums of s adjacent columns (s divides W), each from the sums for s / 2."""
    key = ("columns", s)
    if key not in shared:
        below = image if s == 2 else _column_sums(image, s // 2, shared)
        out = below[:, 0::2].astype(np.uint16)
        out += below[:, 1::2]
        shared[key] = out
    return shared[key]


def _weighted_taps(x: np.ndarray, index: np.ndarray, weight: np.ndarray, *, axis: int) -> np.ndarray:
    """``sum_k take(x, index[:, k], axis) * weight[:, k]`` in float32, tap by tap in order.

    ``x`` is float32. A tap whose weights are all zero is skipped (adding +0.0 to a non-negative sum changes nothing),
    and the first tap is stored rather than added to zeros.
    """
    shape = (-1, 1, 1) if axis == 0 else (1, -1, 1)
    out = tmp = None
    for k in range(index.shape[1]):
        if not weight[:, k].any():
            continue
        tmp = np.take(x, index[:, k], axis=axis, out=tmp)
        tmp *= weight[:, k].reshape(shape)
        if out is None:
            out, tmp = tmp, None
        else:
            out += tmp
    return out


def _bilinear_fractional(image: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """float32 (oh, ow, 3) bilinear resize (values 0..255), written ``a + t (b - a)`` so flat stays flat."""
    h, w = image.shape[:2]
    i0, i1, ty = _linear_table(h, oh)
    j0, j1, tx = _linear_table(w, ow)
    top = np.take(image, i0, axis=0)
    rows = np.subtract(np.take(image, i1, axis=0), top, dtype=np.float32)
    rows *= ty[:, None, None]
    rows += top
    left = np.take(rows, j0, axis=1)
    out = np.take(rows, j1, axis=1)
    out -= left
    out *= tx[None, :, None]
    out += left
    return out


def _reflect101(n: int) -> tuple[int, int]:
    """Source rows for the padding rows before 0 and after n - 1 (OpenCV's BORDER_REFLECT_101; replicate at n=1)."""
    return (1, n - 2) if n > 1 else (0, 0)


def sobel_mean(level: np.ndarray) -> float:
    """Mean over pixels and channels of ``hypot(Sx, Sy)`` (3 x 3 Sobel, reflect-101 border) of an (H, W, 3) level.

    Integer levels (uint8, or uint16 sums of four uint8) are filtered exactly in int16; float levels in float32.
    Rows are processed in strips of :data:`STRIP_ROWS`.
    """
    h, w = level.shape[:2]
    integer = level.dtype.kind in "ui"
    work = np.int16 if integer else np.float32
    top, bottom = _reflect101(h)
    left, right = _reflect101(w)
    total = 0.0
    strip = np.empty((min(STRIP_ROWS, h) + 2, w + 2, 3), dtype=work)
    for start in range(0, h, STRIP_ROWS):
        stop = min(start + STRIP_ROWS, h)
        # Padded strip: rows start-1 .. stop, columns -1 .. w.
        p = strip[: stop - start + 2]
        p[1:-1, 1:-1] = level[start:stop]
        p[0, 1:-1] = level[start - 1] if start > 0 else level[top]
        p[-1, 1:-1] = level[stop] if stop < h else level[bottom]
        p[:, 0] = p[:, 1 + left]
        p[:, -1] = p[:, 1 + right]
        dx = p[:, 2:] - p[:, :-2]
        gx = dx[:-2] + dx[2:]
        gx += dx[1:-1]
        gx += dx[1:-1]
        sy = p[:, :-2] + p[:, 2:]
        sy += p[:, 1:-1]
        sy += p[:, 1:-1]
        gy = sy[2:] - sy[:-2]
        # float32 squares of the int16 gradients are exact (|g| <= 4 * 4 * 255 < 2**12).
        mag = gx.astype(np.float32) if integer else gx
        mag *= mag
        gy = gy.astype(np.float32) if integer else gy
        gy *= gy
        mag += gy
        np.sqrt(mag, out=mag)
        total += float(mag.sum())  # float32 pairwise within a strip (error ~1e-6), float64 across strips
    return total / (h * w * 3)


def colour_codes24(level: np.ndarray) -> np.ndarray:
    """uint32 code per pixel of a uint8 (H, W, 3) level, ``r | g << 8 | b << 16`` (one byte per channel).

    Each code is an unaligned little-endian 4-byte load at the pixel's first byte (stride 3) with the fourth
    byte, the next pixel's red, masked off; one spare byte at the end keeps the last load inside the buffer.
    """
    n = level.shape[0] * level.shape[1]
    buffer = np.empty(3 * n + 1, dtype=np.uint8)
    buffer[: 3 * n] = level.reshape(-1)
    buffer[-1] = 0
    loads = np.ndarray((n,), dtype="<u4", buffer=buffer, strides=(3,))
    return np.bitwise_and(loads, np.uint32(0xFFFFFF))


def colour_counts(level: np.ndarray, bits) -> np.ndarray:
    """Distinct ``b``-bit colours of a uint8 (H, W, 3) level for each b in ``bits`` (int64)."""
    codes = colour_codes24(level)
    codes.sort()
    current = _distinct(codes)
    found: dict[int, int] = {}
    for b in range(8, min(bits) - 1, -1):
        if b < 8:
            keep = (0xFF << (8 - b)) & 0xFF
            current = np.bitwise_and(current, np.uint32(keep * 0x010101))
            current.sort()
            current = _distinct(current)
        found[b] = current.size
    return np.array([found[b] for b in bits], dtype=np.int64)


def _distinct(ordered: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array."""
    if ordered.size < 2:
        return ordered
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return np.compress(keep, ordered)
