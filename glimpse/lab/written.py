"""A level-set traversal's end point as the files that hold it, and what a model gives the written image.

The float end point is what the walk holds; a reader of ``end.png`` gets it rounded to 8 bits, decoded and
passed through the model's own preprocessing, so the number to report for the file is that one
(:func:`glimpse.lab.common.written_probabilities`), beside a note when rounding moved it
(:func:`glimpse.lab.blindspot.rounding_note`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from glimpse.images import png_bytes
from glimpse.lab.blindspot import Traversal, rounding_note, traversal_npz_bytes
from glimpse.lab.common import ModelInput, to_tensor, to_uint8, written_probabilities


@dataclass(frozen=True)
class WrittenEnd:
    """The traversal's files and what the model gives the end image re-read.

    ``png``: the end point at the model's input size (lossless, the image the model was given); ``npz``: the
    float points and confidences (:func:`glimpse.lab.blindspot.traversal_npz_bytes`); ``view``: the end point
    upsampled to the source's size (for looking at only). ``confidence``: the source class's probability for
    ``png`` decoded by :mod:`glimpse.images` and passed through the model's preprocessing; ``label`` and
    ``top_probability``: the re-read image's top class; ``note``: what 8-bit rounding did, when it moved it.
    """

    png: bytes
    npz: bytes
    view: bytes
    confidence: float
    label: str
    top_probability: float
    note: str | None


def written_end(
    tr: Traversal,
    source: np.ndarray,
    model: nn.Module,
    preprocess: Callable,
    inp: ModelInput,
    labels: Sequence[str],
) -> WrittenEnd:
    """Write ``tr``'s end point as its files and re-read the PNG through ``preprocess`` and ``model`` (the
    caller holds the model's lock); ``source`` gives the view's size, ``labels`` the top class's name."""
    png = png_bytes(tr.end)
    probs = written_probabilities(png, model, preprocess, inp)
    top = int(probs.argmax())
    view = png_bytes(to_uint8(to_tensor(tr.end, None, "cpu"), source.shape[:2]))
    conf = float(probs[tr.source_class])
    return WrittenEnd(png, traversal_npz_bytes(tr), view, conf, labels[top], float(probs[top]), rounding_note(tr, conf))
