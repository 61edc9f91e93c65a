"""The embedded shapes classifier: which coloured shapes are in a scene (multi-label, 12 classes).

It reads the synthetic scenes the embedded text-to-image model was trained on (:mod:`models.shapes_scenes`:
one or two flat-coloured shapes on white, 32×32) and scores each of the 12 "colour shape" classes
independently (sigmoid), so a scene of two objects has two classes present. Every scene comes with exact
object masks, so the pointing game and relevance mass of a map can be scored against the object it
explains (``python -m glimpse evaluate shapes``, the Evaluate page). Weights: ``embedded/shapes_classifier/``;
``training/shapes_classifier/`` trains them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.shapes_scenes import COLOURS, SHAPES
from models.small_cnn import SmallCNN

MODEL_ID = "shapes-classifier"
WEIGHTS = Path(__file__).parent / "embedded" / "shapes_classifier" / "model.safetensors"
#: the classes, "colour shape", colour-major
LABELS: tuple[str, ...] = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)
MEAN, STD = 0.5, 0.5


class ShapesCNN(SmallCNN):
    """32, 64, 64 channels, then 1024 → 128 → 12 logits: (B, 3, 32, 32) -> (B, 12)."""

    def __init__(self, classes: int = len(LABELS)) -> None:
        super().__init__((32, 32), (32, 64, 64), 128, classes)


def targets(spec) -> torch.Tensor:
    """The multi-hot target (12,) of a :class:`models.shapes_scenes.CaptionSpec`."""
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


def mask_pairs(scenes: int = 40, seed: int = 0) -> tuple[list, list, list[int], list[str]]:
    """The (images, masks, classes, names) :func:`mask_benchmark` scores: one pair per object of ``scenes``
    fresh scenes (drawn from ``seed``), in order."""
    import numpy as np

    from models.shapes_scenes import training_scenes

    rng = np.random.default_rng(1_000_000 + seed)
    images, masks, classes, names = [], [], [], []
    for n, scene in enumerate(training_scenes(rng, scenes)):
        for obj, mask in zip(scene.spec.objects, scene.masks):
            if mask.any():
                images.append(scene.image)
                masks.append(mask)
                classes.append(LABELS.index(f"{obj.colour} {obj.shape}"))
                names.append(f"scene {n}: {obj.colour} {obj.shape}")
    return images, masks, classes, names


def mask_benchmark(bundle, methods, *, scenes: int = 40, seed: int = 0, k: float = 10.0, progress=None):
    """Every method's map of each object's class against that object's exact mask, on ``scenes`` fresh scenes.

    Returns a :class:`glimpse.evaluation.masks.MaskResult` with one pair per object (a two-object scene gives
    two pairs: each object's class explained, scored against its own mask).
    """
    from glimpse.evaluation.masks import mask_scores

    images, masks, classes, names = mask_pairs(scenes, seed)
    return mask_scores(bundle, images, masks, methods, names=names, targets=classes, k=k, seed=seed, progress=progress)
