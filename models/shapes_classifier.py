"""The embedded shapes classifier: which coloured shapes are in a scene (multi-label, 12 classes).

It reads the synthetic scenes the embedded text-to-image model was trained on (:mod:`glimpse.evaluation.shapes_scenes`:
one or two flat-coloured shapes on white, 32×32) and scores each of the 12 "colour shape" classes
independently (sigmoid), so a scene of two objects has two classes present. Every scene comes with exact
object masks, so the pointing game and relevance mass of a map can be scored against the object it
explains (:mod:`glimpse.evaluation.shapes_masks`: ``python -m glimpse evaluate shapes``, the Evaluate page). Weights: ``embedded/shapes_classifier/``;
``training/shapes_classifier/`` trains them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from glimpse.evaluation.shapes_scenes import OBJECTS
from models.small_cnn import SmallCNN

MODEL_ID = "shapes-classifier"
WEIGHTS = Path(__file__).parent / "embedded" / "shapes_classifier" / "model.safetensors"
#: the classes: the scenes' objects, "colour shape", colour-major
LABELS: tuple[str, ...] = OBJECTS
MEAN, STD = 0.5, 0.5


class ShapesCNN(SmallCNN):
    """32, 64, 64 channels, then 1024 → 128 → 12 logits: (B, 3, 32, 32) -> (B, 12)."""

    def __init__(self, classes: int = len(LABELS)) -> None:
        super().__init__((32, 32), (32, 64, 64), 128, classes)


def targets(spec) -> torch.Tensor:
    """The multi-hot target (12,) of a :class:`glimpse.evaluation.shapes_scenes.CaptionSpec`."""
    y = torch.zeros(len(LABELS))
    for obj in spec.objects:
        y[LABELS.index(f"{obj.colour} {obj.shape}")] = 1.0
    return y


def load_shapes_classifier() -> ShapesCNN:
    """The shipped weights, on the CPU, in eval mode."""
    from safetensors.torch import load_file

    model = ShapesCNN()
    model.load_state_dict(load_file(WEIGHTS))
    return model.eval()
