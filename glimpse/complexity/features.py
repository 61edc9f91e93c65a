"""Multi-Scale Sobel Gradient (MSG) and Multi-Scale Unique Colour (MUC_1..MUC_8), batched in torch.

Sarıtaş, Dayan, Shen & Nath, "Complexity in Complexity: Understanding Visual Complexity Through Structure,
Color, and Surprise", arXiv:2501.15890 (2025); values equal the reference code (scripts/algorithms.py) on the
same image. One bilinear pyramid serves MSG, one area pyramid serves every MUC bit depth. On the CPU each image
goes through the integer numpy kernel of :mod:`glimpse.complexity.host`; on other devices images of the same size
are scored together as one (B, 3, H, W) batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

import glimpse.complexity.host as host
from glimpse.complexity.pyramid import SCALES, WEIGHTS, area_pyramid, bilinear_pyramid, check_image, to_batch
from glimpse.devices import resolve_device
from glimpse.versions import library_versions

#: Bit depths of MUC in the shipped tables (the paper's models use MUC3..MUC8; the reference default is 5).
BITS: tuple[int, ...] = tuple(range(1, 9))


@dataclass(frozen=True)
class ComplexityFeatures:
    """The paper's features for one image.

    Attributes
    ----------
    msg : float
        Multi-Scale Sobel Gradient, ``sum_s w_s * mean_c mean_xy hypot(Sx, Sy)`` on [0, 1] pixels.
    msg_per_scale : np.ndarray
        float64 (4,): the per-scale mean gradient magnitude (before weighting), scales 1, 2, 4, 8.
    muc : np.ndarray
        float64 (8,): MUC_b for b = 1..8, ``round(sum_s w_s * count_s, 2)``.
    muc_counts : np.ndarray
        int64 (8, 4): distinct quantised colours per bit depth (rows b = 1..8) and scale (columns).
    edge_density : float | None
        Canny edge density (None when not requested).
    standins : dict
        Offline stand-ins for the paper's segment counts, keyed by their labelled column name.
    shape : tuple
        (H, W) of the scored image.
    """

    msg: float
    msg_per_scale: np.ndarray
    muc: np.ndarray
    muc_counts: np.ndarray
    edge_density: float | None = None
    standins: dict[str, float] = field(default_factory=dict)
    shape: tuple[int, int] = (0, 0)
    method: str = "complexity-in-complexity"

    def meta(self) -> dict:
        """How the features were made: the method (the paper's reference code), the image's shape, the scales
        and weights, which stand-ins were added, and the libraries' versions."""
        return {
            "lens": "complexity",
            "method": self.method,
            "shape": [int(v) for v in self.shape],
            "scales": list(SCALES),
            "weights": list(WEIGHTS),
            "edge_density": self.edge_density is not None,
            "standins": sorted(self.standins),
            "versions": library_versions(),
        }

    def record(self) -> dict[str, float]:
        """Flat record with the column names of the paper's tables: MSG, MUC1..MUC8, edge_density, stand-ins."""
        out: dict[str, float] = {"MSG": float(self.msg)}
        out.update({f"MUC{b}": float(v) for b, v in zip(BITS, self.muc)})
        if self.edge_density is not None:
            out["edge_density"] = float(self.edge_density)
        out.update(self.standins)
        return out


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Per-channel 3x3 Sobel magnitude ``hypot(Sx, Sy)`` with OpenCV's BORDER_REFLECT_101 border.

    Parameters
    ----------
    x : torch.Tensor
        float (B, C, H, W).

    Returns
    -------
    torch.Tensor
        float (B, C, H, W).
    """
    # Explicit differences (not a conv2d) so a flat region gives exactly 0, as in OpenCV's separable Sobel;
    # in-place updates keep the number of full-size temporaries low.
    h, w = x.shape[-2:]
    if h > 1 and w > 1:
        p = F.pad(x, (1, 1, 1, 1), mode="reflect")
    else:
        p = F.pad(x, (1, 1, 0, 0), mode="reflect" if w > 1 else "replicate")
        p = F.pad(p, (0, 0, 1, 1), mode="reflect" if h > 1 else "replicate")
    dx = p[..., 2:] - p[..., :-2]  # (B, C, H + 2, W)
    gx = dx[..., :-2, :] + dx[..., 2:, :]
    gx.add_(dx[..., 1:-1, :], alpha=2)
    del dx
    sy = p[..., :-2] + p[..., 2:]
    sy.add_(p[..., 1:-1], alpha=2)
    gy = sy[..., 2:, :] - sy[..., :-2, :]
    return torch.hypot(gx, gy, out=gx)


def _msg_per_scale(pyramid: list[torch.Tensor]) -> torch.Tensor:
    """(B, 4) per-scale mean over channels and pixels of the Sobel magnitude."""
    return torch.stack([sobel_magnitude(level).mean(dim=(2, 3)).mean(dim=1) for level in pyramid], dim=1)


def _quantise_mask(bits: int) -> int:
    keep = (0xFF << (8 - bits)) & 0xFF
    return (keep << 16) | (keep << 8) | keep


def colour_codes(pixels: np.ndarray, bits: int) -> np.ndarray:
    """int32 codes of the ``bits``-bit colours of uint8 (..., 3) pixels: equal codes = the same MUC_b colour.

    The code is the 24-bit RGB with the low ``8 - bits`` bits of each channel cleared (``q_b`` of :func:`muc`).
    """
    if bits not in BITS:
        raise ValueError(f"bits: must be one of 1..8, got {bits!r}")
    c = np.asarray(pixels).astype(np.int32)
    return ((c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]) & np.int32(_quantise_mask(bits))


def _unique_counts(level: torch.Tensor, bits: Sequence[int], *, sort_on_host: bool | None = None) -> torch.Tensor:
    """Distinct quantised RGB triplets per image of a uint8 (B, 3, h, w) level, for each bit depth.

    Quantising keeps the top ``b`` bits of each channel, ``v -> (v >> (8 - b)) << (8 - b)``. Quantisation to b
    bits of the colours present equals the colours present after quantising, so one sort of the 24-bit codes
    serves b = 8 and every lower depth only re-sorts the (much shorter) set of distinct codes above it.

    ``sort_on_host`` picks numpy (default on CPU) or ``torch.unique`` on the level's device (default elsewhere).

    Returns
    -------
    torch.Tensor
        int64 (len(bits), B).
    """
    nb = level.shape[0]
    if sort_on_host is None:
        sort_on_host = level.device.type == "cpu"
    if sort_on_host:
        # numpy's sort of int32 keys is several times faster than torch.unique on CPU; 7 bits of image index fit.
        dtype = np.int32 if nb < 128 else np.int64
        c = level.cpu().numpy().astype(dtype)
        codes = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
        codes |= (np.arange(nb, dtype=dtype) << 24)[:, None, None]
        current = _distinct(codes.ravel())
        counts = {}
        for b in sorted(set(bits), reverse=True):
            current = _distinct(current & dtype(_quantise_mask(b) | ~0xFFFFFF))
            counts[b] = np.bincount(current >> 24, minlength=nb)
        return torch.from_numpy(np.stack([counts[b] for b in bits]).astype(np.int64))
    c = level.to(torch.int64)
    codes = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    codes = codes | (torch.arange(nb, device=level.device, dtype=torch.int64).view(nb, 1, 1) << 24)
    current = torch.unique(codes)
    counts = {}
    for b in sorted(set(bits), reverse=True):
        current = torch.unique(current & (_quantise_mask(b) | ~0xFFFFFF))
        counts[b] = torch.bincount(current >> 24, minlength=nb)
    return torch.stack([counts[b] for b in bits])


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique without its overhead)."""
    if values.size == 0:
        return values
    ordered = np.sort(values)
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _score_group(batch: torch.Tensor, bits: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MSG (B,), MSG per scale (B, 4), MUC counts (B, len(bits), 4) for a uint8 (B, 3, H, W) batch."""
    per_scale = _msg_per_scale(bilinear_pyramid(batch)).to("cpu", torch.float64)  # MPS has no float64
    weights = torch.tensor(WEIGHTS, dtype=torch.float64)
    msg = (per_scale * weights).sum(dim=1)
    counts = torch.stack([_unique_counts(level, bits) for level in area_pyramid(batch)], dim=-1)  # (bits, B, 4)
    return msg.cpu().numpy(), per_scale.cpu().numpy(), counts.permute(1, 0, 2).cpu().numpy()


def _score_on_host(images: Sequence[np.ndarray], bits: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_score_group` on the CPU: one image at a time with the numpy kernel of :mod:`glimpse.complexity.host`
    (same counts; MSG equal to float32 rounding), which keeps each image's passes in the cache."""
    scored = [host.score_image(img, bits) for img in images]
    per_scale = np.stack([p for p, _ in scored])
    counts = np.stack([c for _, c in scored])
    return per_scale @ np.asarray(WEIGHTS, dtype=np.float64), per_scale, counts


def muc_from_counts(counts: np.ndarray) -> np.ndarray:
    """MUC from per-scale counts (..., 4): ``round(sum_s w_s * count_s, 2)`` (the reference's rounding)."""
    weighted = np.asarray(counts, dtype=np.float64) @ np.asarray(WEIGHTS, dtype=np.float64)
    return np.round(weighted, 2)


def _device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    return resolve_device(device)


def complexity_batch(
    images: Iterable[np.ndarray],
    *,
    edges: bool = True,
    standins: Sequence[str] = (),
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
    names: Sequence[str] | None = None,
) -> list[ComplexityFeatures]:
    """MSG, MUC_1..MUC_8 and optional baselines for many images, same-sized images batched on ``device``.

    Parameters
    ----------
    images : iterable of np.ndarray
        uint8 (H, W, 3) or (H, W) images, each at least 8 x 8 pixels; sizes may differ.
    edges : bool, optional
        Also compute the Canny edge density baseline (:func:`glimpse.complexity.edges.edge_density`, on CPU).
    standins : sequence of str, optional
        Names from :data:`glimpse.complexity.segments.STANDINS` (offline stand-ins for SAM / FC-CLIP counts).
    device : str or torch.device, optional
        Where the pyramids, gradients and colour counts are computed.
    batch_size : int, optional
        Images per device batch.
    progress : callable, optional
        Called as ``progress(done, total)`` after each batch.
    names : sequence of str, optional
        One name per image (a file name, a path in a data set), used in the error of an image that cannot be
        scored (``"photo.png: needs at least 8x8 pixels…"``); by default ``images[i]``.

    Returns
    -------
    list of ComplexityFeatures
        In input order.
    """
    from glimpse.complexity.edges import edge_density
    from glimpse.complexity.segments import segment_count

    if batch_size < 1:
        raise ValueError(f"batch_size: must be at least 1, got {batch_size}")
    dev = _device(device)
    images = list(images)
    if names is not None and len(names) != len(images):
        raise ValueError(f"names: {len(names)} names for {len(images)} images")
    labels = [f"images[{i}]" for i in range(len(images))] if names is None else [str(n) for n in names]
    arrays = [check_image(img, name=label) for img, label in zip(images, labels)]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, arr in enumerate(arrays):
        groups.setdefault(arr.shape[:2], []).append(i)
    results: list[ComplexityFeatures | None] = [None] * len(arrays)
    done = 0
    with torch.inference_mode():
        for shape, idx in groups.items():
            for start in range(0, len(idx), batch_size):
                chunk = idx[start : start + batch_size]
                if dev.type == "cpu":
                    msg, per_scale, counts = _score_on_host([arrays[i] for i in chunk], BITS)
                else:
                    msg, per_scale, counts = _score_group(to_batch([arrays[i] for i in chunk], dev), BITS)
                for k, i in enumerate(chunk):
                    results[i] = ComplexityFeatures(
                        msg=float(msg[k]),
                        msg_per_scale=per_scale[k],
                        muc=muc_from_counts(counts[k]),
                        muc_counts=counts[k].astype(np.int64),
                        edge_density=edge_density(arrays[i]) if edges else None,
                        standins={name: float(segment_count(arrays[i], method=name)[0]) for name in standins},
                        shape=shape,
                    )
                done += len(chunk)
                if progress is not None:
                    progress(done, len(arrays))
    return results  # type: ignore[return-value]


def complexity_features(
    image: np.ndarray, *, edges: bool = True, standins: Sequence[str] = (), device: str | torch.device = "cpu"
) -> ComplexityFeatures:
    """MSG, MUC_1..MUC_8 and the Canny edge density of one image (see :func:`complexity_batch`).

    Examples
    --------
    >>> import numpy as np
    >>> f = complexity_features(np.full((16, 16, 3), 7, np.uint8))
    >>> f.msg, f.muc.tolist()
    (0.0, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    """
    return complexity_batch([image], edges=edges, standins=standins, device=device)[0]


def msg(image: np.ndarray, *, device: str | torch.device = "cpu") -> float:
    """Multi-Scale Sobel Gradient of Sarıtaş et al. (2025).

    ``MSG = sum_s w_s * (1/3) sum_c mean_xy sqrt(Sx(I_s,c)^2 + Sy(I_s,c)^2)`` with ``I_s`` the image in [0, 1]
    resized bilinearly to (W // s, H // s), s = 1, 2, 4, 8 and w = 0.4, 0.3, 0.2, 0.1; 3x3 Sobel, reflect-101 border.

    Parameters
    ----------
    image : np.ndarray
        uint8 (H, W, 3) or (H, W), at least 8 x 8.
    device : str or torch.device, optional

    Returns
    -------
    float
        0 for a constant image.
    """
    return complexity_batch([image], edges=False, device=device)[0].msg


def muc(image: np.ndarray, *, bits: int = 5, device: str | torch.device = "cpu") -> float:
    """Multi-Scale Unique Colour of Sarıtaş et al. (2025).

    ``MUC_b = round(sum_s w_s * |{ q_b(I_s(x, y)) }|, 2)`` with ``I_s`` the uint8 image area-resized to
    (W // s, H // s), ``q_b(v) = (v >> (8 - b)) << (8 - b)`` per channel, s = 1, 2, 4, 8, w = 0.4, 0.3, 0.2, 0.1.

    Parameters
    ----------
    image : np.ndarray
        uint8 (H, W, 3) or (H, W), at least 8 x 8.
    bits : int, optional
        Bits kept per channel, 1..8 (the reference default is 5).
    device : str or torch.device, optional

    Returns
    -------
    float
        1.0 for a constant image; at most 8 for ``bits=1``.
    """
    if bits not in BITS:
        raise ValueError(f"bits: must be one of 1..8, got {bits!r}")
    return float(complexity_batch([image], edges=False, device=device)[0].muc[bits - 1])


__all__ = [
    "BITS",
    "SCALES",
    "WEIGHTS",
    "ComplexityFeatures",
    "colour_codes",
    "complexity_batch",
    "complexity_features",
    "msg",
    "muc",
    "muc_from_counts",
    "sobel_magnitude",
]
