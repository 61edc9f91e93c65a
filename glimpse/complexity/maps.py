"""Where the complexity is: per-scale spatial maps behind MSG and MUC.

Sarıtaş et al., arXiv:2501.15890 (2025) report one number per image; these maps keep the terms it averages.

- Gradient map at scale s: ``G_s(x, y) = (1/3) sum_c hypot(Sx, Sy)(I_s,c)(x, y)`` on the bilinear level in [0, 1];
  its mean is the per-scale MSG term, so ``MSG = sum_s w_s * mean(G_s)``.
- Colour map at scale s: the number of distinct b-bit colours in each ``window x window`` tile of the area
  level (tiles at the right and bottom edges may be smaller); the image-wide count is what MUC_b weights.
- Edge map: the Canny edges whose fraction is the edge density.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from glimpse.complexity.edges import edge_map
from glimpse.complexity.features import _device, _quantise_mask, sobel_magnitude
from glimpse.complexity.pyramid import (
    SCALES,
    WEIGHTS,
    area_pyramid,
    area_resize,
    bilinear_pyramid,
    check_image,
    to_batch,
)
from glimpse.versions import library_versions


@dataclass(frozen=True)
class ComplexityMaps:
    """Per-scale maps of one image (CPU numpy, raw values, no normalisation).

    Attributes
    ----------
    gradient : tuple of np.ndarray
        float32 (H // s, W // s) mean-over-channels Sobel magnitude per scale in :data:`SCALES`.
    colour : tuple of np.ndarray
        int32 (ceil(h_s / window), ceil(w_s / window)) distinct ``bits``-bit colours per tile per scale.
    edges : np.ndarray
        bool (H, W) Canny edge map.
    bits, window : int
        The colour map's bit depth and tile side (pixels of each level).
    """

    gradient: tuple[np.ndarray, ...]
    colour: tuple[np.ndarray, ...]
    edges: np.ndarray
    bits: int
    window: int
    shape: tuple[int, int]
    scales: tuple[int, ...] = SCALES
    weights: tuple[float, ...] = WEIGHTS
    method: str = "complexity-maps"

    def meta(self) -> dict:
        """How the maps were made: the image's shape, scales and weights, the colour maps' bit depth and tile,
        and the libraries' versions."""
        return {
            "lens": "complexity",
            "method": self.method,
            "shape": [int(v) for v in self.shape],
            "scales": list(self.scales),
            "weights": list(self.weights),
            "bits": int(self.bits),
            "window": int(self.window),
            "versions": library_versions(),
        }

    @property
    def msg_per_scale(self) -> np.ndarray:
        """float64 (4,): mean of each gradient map, the per-scale MSG terms."""
        return np.array([g.mean(dtype=np.float64) for g in self.gradient])


def _tile_counts(level: torch.Tensor, bits: int, window: int) -> np.ndarray:
    """Distinct quantised colours per window x window tile of a uint8 (3, h, w) level."""
    _, h, w = level.shape
    c = level.to(torch.int64)
    codes = ((c[0] << 16) | (c[1] << 8) | c[2]) & _quantise_mask(bits)
    ny, nx = -(-h // window), -(-w // window)
    ty = torch.arange(h, device=level.device) // window
    tx = torch.arange(w, device=level.device) // window
    tile = ty[:, None] * nx + tx[None, :]
    distinct = torch.unique(codes | (tile << 24))
    return torch.bincount(distinct >> 24, minlength=ny * nx).reshape(ny, nx).to(torch.int32).cpu().numpy()


def _check_bits_window(bits: int, window: int) -> None:
    if bits not in range(1, 9):
        raise ValueError(f"bits: must be one of 1..8, got {bits!r}")
    if not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"window: must be an integer >= 2, got {window!r}")


def gradient_maps(image: np.ndarray, *, device: str | torch.device = "cpu") -> tuple[np.ndarray, ...]:
    """Per-scale gradient maps ``G_s``: float32 (H // s, W // s) for s in :data:`SCALES`; ``mean(G_s)`` is the MSG term.

    Examples
    --------
    >>> import numpy as np
    >>> [g.shape for g in gradient_maps(np.zeros((16, 24, 3), np.uint8))]
    [(16, 24), (8, 12), (4, 6), (2, 3)]
    """
    arr = check_image(image)
    with torch.inference_mode():
        return _gradient(to_batch([arr], _device(device)))


def _gradient(batch: torch.Tensor) -> tuple[np.ndarray, ...]:
    return tuple(
        sobel_magnitude(level).mean(dim=1)[0].cpu().numpy().astype(np.float32) for level in bilinear_pyramid(batch)
    )


def colour_maps(
    image: np.ndarray,
    *,
    bits: int = 5,
    window: int = 8,
    scales: tuple[int, ...] = SCALES,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, ...]:
    """Distinct ``bits``-bit colours per ``window x window`` tile of the area level at each of ``scales``.

    Returns
    -------
    tuple of np.ndarray
        int32 (ceil(h_s / window), ceil(w_s / window)) per scale; tiles at the right and bottom edges may be smaller.

    Examples
    --------
    >>> import numpy as np
    >>> colour_maps(np.zeros((10, 10, 3), np.uint8), scales=(1,))[0].tolist()
    [[1, 1], [1, 1]]
    """
    _check_bits_window(bits, window)
    unknown = [s for s in scales if s not in SCALES]
    if unknown:
        raise ValueError(f"scales: unknown {unknown}; known: {SCALES}")
    arr = check_image(image)
    with torch.inference_mode():
        batch = to_batch([arr], _device(device))
        return tuple(_tile_counts(area_resize(batch, s)[0], bits, int(window)) for s in scales)


def complexity_maps(
    image: np.ndarray, *, bits: int = 5, window: int = 8, device: str | torch.device = "cpu"
) -> ComplexityMaps:
    """Per-scale gradient and unique-colour maps, and the Canny edge map, of one image.

    Parameters
    ----------
    image : np.ndarray
        uint8 (H, W, 3) or (H, W), at least 8 x 8.
    bits : int, optional
        Bits per channel of the colour map, 1..8 (the reference's MUC default is 5).
    window : int, optional
        Tile side of the colour map, in pixels of each pyramid level, >= 2.
    device : str or torch.device, optional

    Returns
    -------
    ComplexityMaps
        ``maps.msg_per_scale`` equals :attr:`ComplexityFeatures.msg_per_scale` of the same image.

    Examples
    --------
    >>> import numpy as np
    >>> m = complexity_maps(np.zeros((32, 32, 3), np.uint8), window=8)
    >>> [g.shape for g in m.gradient], int(m.colour[0].max())
    ([(32, 32), (16, 16), (8, 8), (4, 4)], 1)
    """
    _check_bits_window(bits, window)
    arr = check_image(image)
    dev = _device(device)
    with torch.inference_mode():
        batch = to_batch([arr], dev)
        gradient = _gradient(batch)
        colour = tuple(_tile_counts(level[0], bits, int(window)) for level in area_pyramid(batch))
    return ComplexityMaps(
        gradient=gradient, colour=colour, edges=edge_map(arr), bits=bits, window=int(window), shape=arr.shape[:2]
    )
