"""Offline stand-ins for the paper's segment counts (SAM masks, FC-CLIP classes).

The paper's base regressors are ``sqrt(# SAM ViT-H masks, 64 points per side)`` and ``sqrt(# FC-CLIP panoptic
classes)`` (Shen et al. 2024, used by Sarıtaş et al., arXiv:2501.15890). Neither model runs offline, so these
scikit-image counts are STAND-INS: they grow with the number of regions, but they are not the paper's features and
the published regression weights do not apply to them. Their column names say so (``standin_*``).

A new stand-in is one function ``f(image) -> int`` and one line in :data:`STANDINS`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from glimpse.complexity.pyramid import check_image

#: Images are segmented at most this many pixels on the long side (speed; counts depend on it).
MAX_SIDE = 256


def _shrink(image: np.ndarray) -> np.ndarray:
    from skimage.transform import resize

    h, w = image.shape[:2]
    scale = MAX_SIDE / max(h, w)
    if scale >= 1:
        return image
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return (resize(image, size, anti_aliasing=True, preserve_range=True) + 0.5).astype(np.uint8)


def felzenszwalb_count(image: np.ndarray) -> int:
    """Felzenszwalb & Huttenlocher (2004) graph segments (scale 100, sigma 0.5, min size 50) on <= 256 px."""
    from skimage.segmentation import felzenszwalb

    return int(felzenszwalb(_shrink(image), scale=100, sigma=0.5, min_size=50).max() + 1)


def slic_count(image: np.ndarray) -> int:
    """SLIC superpixels (Achanta et al. 2012; 400 seeds, compactness 10) after merging neighbours whose mean
    colours differ by less than 20 (RAG threshold cut), on <= 256 px."""
    from skimage import graph
    from skimage.segmentation import slic

    small = _shrink(image)
    labels = slic(small, n_segments=400, compactness=10, start_label=0)
    rag = graph.rag_mean_color(small, labels)
    merged = graph.cut_threshold(labels, rag, 20)
    return int(len(np.unique(merged)))


#: Column name -> stand-in. Names start with ``standin_`` so no table mistakes them for SAM / FC-CLIP counts.
STANDINS: dict[str, Callable[[np.ndarray], int]] = {
    "standin_felzenszwalb_segments": felzenszwalb_count,
    "standin_slic_regions": slic_count,
}


def segment_count(image: np.ndarray, *, method: str = "standin_felzenszwalb_segments") -> tuple[int, str]:
    """Count segments with an offline stand-in; returns (count, method).

    Parameters
    ----------
    image : np.ndarray
        uint8 (H, W, 3) or (H, W).
    method : str
        A key of :data:`STANDINS`.
    """
    if method not in STANDINS:
        raise ValueError(f"method: unknown stand-in {method!r}; known: {', '.join(STANDINS)}")
    return STANDINS[method](check_image(image)), method
