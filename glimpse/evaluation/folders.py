"""A small image data set from a folder: one sub-folder per class (``DIR/cat/*.png``, ``DIR/dog/*.jpg``).

For DiffROAR on the user's own data (:mod:`glimpse.evaluation.diffroar`): every image is read with
:func:`glimpse.images.load_image` (unreadable files are skipped and named), resized to one square side, and the
set split once into a training and a test part by a seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from glimpse.images import IMAGE_SUFFIXES as SUFFIXES


@dataclass(frozen=True)
class FolderData:
    """uint8 images (N, side, side, 3), labels (N,), the class names (sub-folder names, sorted) and the
    files skipped (with why)."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    skipped: tuple[str, ...]

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the training and the test part (every class in both, at least one image each)."""
        rng = np.random.default_rng(seed)
        train, test = [], []
        for c in range(len(self.classes)):
            idx = rng.permutation(np.flatnonzero(self.labels == c))
            n_test = min(len(idx) - 1, max(1, round(test_fraction * len(idx))))
            test += idx[:n_test].tolist()
            train += idx[n_test:].tolist()
        return np.sort(train), np.sort(test)


def image_folder(path: str | os.PathLike, *, side: int = 32, max_per_class: int = 1000) -> FolderData:
    """Read the class sub-folders of ``path`` (see the module docstring).

    Raises
    ------
    ValueError
        Not a folder, fewer than two classes, or a class with fewer than two readable images.
    """
    from glimpse.images import ImageLoadError, load_image

    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"folder: {root} is not a folder")
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if len(classes) < 2:
        raise ValueError(f"folder: {root} needs one sub-folder per class, at least two; found {len(classes)}")
    images, labels, skipped = [], [], []
    for c, name in enumerate(classes):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in SUFFIXES)[:max_per_class]
        count = 0
        for f in files:
            try:
                pixels = load_image(f)
            except ImageLoadError as err:
                skipped.append(f"{name}/{f.name}: {err}")
                continue
            images.append(np.asarray(Image.fromarray(pixels).resize((side, side), Image.BILINEAR)))
            labels.append(c)
            count += 1
        if count < 2:
            raise ValueError(f"folder: class {name!r} has {count} readable image(s); each class needs at least two")
    return FolderData(np.stack(images), np.asarray(labels, np.int64), classes, tuple(skipped))
