"""BlockDigits: images where the evidence is known, after BlockMNIST (Shah, Jain & Netrapalli, NeurIPS 2021).

Each image stacks two square blocks vertically: a **signal block** (a handwritten digit from scikit-learn's
8×8 digits, which ship inside the package, upscaled; the label is that digit) and a **null block** (one
fixed patch, identical for every image and class). Which block is on top is random. The null block carries
no information about the label, so a faithful attribution puts its mass on the signal block; BlockMNIST
showed that a standard model's input gradients leak much of it into the null block, a robust model's do not.

Everything is deterministic from a seed. The 1,797 digits split once (by :data:`SPLIT_SEED`) into a
training and a test part; a data set draws each digit's placement from its own seed.

>>> data = blockdigits("test", seed=0)
>>> data.images.shape[1:], data.images.dtype, len(data) == len(data.labels) == len(data.signal_top)
((64, 32), dtype('uint8'), True)
>>> bool((data.signal_masks()[0] ^ data.null_masks()[0]).all())  # the two blocks tile the image
True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

#: side of each square block in pixels (the 8×8 digits upscaled 4×); an image is (2·BLOCK, BLOCK)
BLOCK = 32
IMAGE_SHAPE = (2 * BLOCK, BLOCK)
#: the fixed split of the 1,797 digits into training and test parts
SPLIT_SEED = 0
TEST_FRACTION = 0.2
LABELS = tuple(str(d) for d in range(10))


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8×8 digits as float32 in [0, 1] upscaled to BLOCK×BLOCK (bilinear), and their labels."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    small = torch.from_numpy(raw.images.astype(np.float32) / 16.0)[:, None]
    big = F.interpolate(small, size=(BLOCK, BLOCK), mode="bilinear", align_corners=False)[:, 0]
    return big.clamp_(0, 1).numpy(), raw.target.astype(np.int64)


@functools.cache
def null_patch() -> np.ndarray:
    """The null block: a square frame with its two diagonals, the same for every image (float32 in [0, 1]).

    Drawn with strokes as thick as the upscaled digits', so it is as salient to the eye as a digit but
    carries nothing about the label.
    """
    patch = np.zeros((BLOCK, BLOCK), np.float32)
    lo, hi, w = 6, BLOCK - 6, 3
    patch[lo:hi, lo : lo + w] = patch[lo:hi, hi - w : hi] = 1.0
    patch[lo : lo + w, lo:hi] = patch[hi - w : hi, lo:hi] = 1.0
    for i in range(lo, hi):  # the diagonals, 3 pixels thick
        for j in (i, lo + hi - 1 - i):
            patch[i, max(lo, j - 1) : min(hi, j + 2)] = 1.0
    return patch


def split_indices(split: str) -> np.ndarray:
    """Indices into the 1,797 digits of the ``"train"`` or ``"test"`` part (fixed by :data:`SPLIT_SEED`)."""
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    _, labels = _digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    n_test = round(TEST_FRACTION * len(labels))
    return np.sort(order[:n_test] if split == "test" else order[n_test:])


@dataclass(frozen=True)
class BlockDigits:
    """A BlockDigits data set: images uint8 (N, 64, 32), labels (N,), whether the signal block is on top."""

    images: np.ndarray  # uint8 (N, 2·BLOCK, BLOCK), grey
    labels: np.ndarray  # int64 (N,), the digit in the signal block
    signal_top: np.ndarray  # bool (N,)
    digit_index: np.ndarray  # int64 (N,), index into scikit-learn's digits
    split: str
    seed: int

    def __len__(self) -> int:
        return len(self.labels)

    def signal_masks(self) -> np.ndarray:
        """bool (N, 64, 32): True on each image's signal block."""
        top = np.zeros(IMAGE_SHAPE, bool)
        top[:BLOCK] = True
        return np.where(self.signal_top[:, None, None], top, ~top)

    def null_masks(self) -> np.ndarray:
        """bool (N, 64, 32): True on each image's null block."""
        return ~self.signal_masks()

    def rgb(self, i: int) -> np.ndarray:
        """Image ``i`` as uint8 RGB (64, 32, 3), grey in all three channels (what the classifiers take)."""
        return np.repeat(self.images[i][:, :, None], 3, axis=2)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Images as float32 (N, 3, 64, 32) in [0, 1] and labels, for training."""
        x = torch.from_numpy(self.images.astype(np.float32) / 255.0)[:, None].expand(-1, 3, -1, -1)
        return x.contiguous(), torch.from_numpy(self.labels)


def blockdigits(split: str = "test", *, seed: int = 0, copies: int = 1) -> BlockDigits:
    """The ``split`` part of BlockDigits, each digit ``copies`` times with placements drawn from ``seed``.

    Parameters
    ----------
    split : {"train", "test"}
    seed : int
        Seed of the placements (signal on top or at the bottom).
    copies : int
        How many times each digit appears (each with its own placement); training uses several.
    """
    if copies < 1:
        raise ValueError(f"copies: must be at least 1, got {copies}")
    digits, labels = _digits()
    index = np.tile(split_indices(split), copies)
    top = np.random.default_rng(seed).random(len(index)) < 0.5
    signal = digits[index]
    null = np.broadcast_to(null_patch(), signal.shape)
    upper = np.where(top[:, None, None], signal, null)
    lower = np.where(top[:, None, None], null, signal)
    images = np.round(np.concatenate([upper, lower], axis=1) * 255).astype(np.uint8)
    return BlockDigits(images, labels[index], top, index, split, seed)


def sample_images(count: int = 4) -> dict[str, np.ndarray]:
    """The first ``count`` test images as uint8 RGB, named for the picker (``"blockdigits #0: 7, digit on top"``)."""
    data = blockdigits("test", seed=0)
    return {
        f"blockdigits #{i}: {data.labels[i]}, digit {'on top' if data.signal_top[i] else 'below'}": data.rgb(i)
        for i in range(min(count, len(data)))
    }
