"""Data-set examples: which images, and which patches of them, excite one channel most.

Olah, Mordvintsev & Schubert, "Feature Visualization", Distill (2017), "dataset examples": an image's score
is the channel's largest activation over positions; its patch is the part of the image around that position,
as wide as ``patch`` of the image (the channel's receptive field is not computed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from glimpse.lab.common import ModelInput, layer_outputs


@dataclass(frozen=True)
class ChannelExample:
    """One image's response: its index, the channel's largest activation, where (box in the image's own pixels:
    top, left, bottom, right) and that patch (uint8)."""

    index: int
    score: float
    box: tuple[int, int, int, int]
    patch: np.ndarray


def top_examples(
    model: nn.Module,
    layer: str,
    channel: int,
    images: Sequence[np.ndarray],
    inp: ModelInput,
    *,
    top: int = 8,
    patch: float = 0.35,
    batch_size: int = 16,
) -> list[ChannelExample]:
    """The ``top`` images of ``images`` whose ``channel`` of ``layer`` reaches the largest activation, best first."""
    if top < 1:
        raise ValueError(f"top: must be at least 1, got {top}")
    if not 0 < patch <= 1:
        raise ValueError(f"patch: a fraction of the image in (0, 1], got {patch}")
    found: list[tuple[float, int, float, float]] = []  # score, index, y, x (fractions of the image)
    for start, act in layer_outputs(model, layer, images, inp, batch_size):
        if act.dim() != 4 or channel >= act.shape[1] or channel < 0:
            raise ValueError(f"channel: {channel} is not a channel of {layer} (output {tuple(act.shape)})")
        maps = act[:, channel].float()
        h, w = maps.shape[-2:]
        flat = maps.reshape(maps.shape[0], -1)
        best, where = flat.max(dim=1)
        for k in range(maps.shape[0]):
            pos = int(where[k])
            found.append((float(best[k]), start + k, (pos // w + 0.5) / h, (pos % w + 0.5) / w))
    found.sort(key=lambda t: (-t[0], t[1]))
    out = []
    for score, index, fy, fx in found[:top]:
        img = np.asarray(images[index])
        ih, iw = img.shape[:2]
        ph, pw = max(1, round(patch * ih)), max(1, round(patch * iw))
        top_ = int(np.clip(round(fy * ih - ph / 2), 0, ih - ph))
        left = int(np.clip(round(fx * iw - pw / 2), 0, iw - pw))
        box = (top_, left, top_ + ph, left + pw)
        out.append(ChannelExample(index, score, box, np.ascontiguousarray(img[top_ : top_ + ph, left : left + pw])))
    return out
