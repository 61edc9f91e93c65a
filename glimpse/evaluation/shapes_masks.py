"""The shapes mask benchmark: every object of a shapes scene explained for its own class and scored against its
exact mask (``python -m glimpse evaluate shapes``, the Evaluate page's shapes masks).

The scenes come from :mod:`glimpse.evaluation.shapes_scenes` (one or two flat-coloured shapes on white, with
exact per-object masks); the classes are its :data:`~glimpse.evaluation.shapes_scenes.OBJECTS`, those of the
embedded multi-label shapes classifier. A two-object scene gives two pairs: each object's class explained,
scored against its own mask by :func:`glimpse.evaluation.masks.mask_scores` (pointing game, relevance mass and
rank, top-k IoU).
"""

from __future__ import annotations

import numpy as np

from glimpse.evaluation.masks import mask_scores
from glimpse.evaluation.shapes_scenes import OBJECTS, training_scenes


def mask_pairs(scenes: int = 40, seed: int = 0) -> tuple[list, list, list[int], list[str]]:
    """The (images, masks, classes, names) :func:`mask_benchmark` scores: one pair per object of ``scenes``
    fresh scenes (drawn from ``seed``), in order; a class is an index into
    :data:`~glimpse.evaluation.shapes_scenes.OBJECTS`."""
    rng = np.random.default_rng(1_000_000 + seed)
    images, masks, classes, names = [], [], [], []
    for n, scene in enumerate(training_scenes(rng, scenes)):
        for obj, mask in zip(scene.spec.objects, scene.masks):
            if mask.any():
                images.append(scene.image)
                masks.append(mask)
                classes.append(OBJECTS.index(f"{obj.colour} {obj.shape}"))
                names.append(f"scene {n}: {obj.colour} {obj.shape}")
    return images, masks, classes, names


def mask_benchmark(bundle, methods, *, scenes: int = 40, seed: int = 0, k: float = 10.0, progress=None):
    """Every method's map of each object's class against that object's exact mask, on ``scenes`` fresh scenes.

    ``bundle`` is a classifier whose labels are :data:`~glimpse.evaluation.shapes_scenes.OBJECTS` (the
    embedded ``shapes-classifier``). Returns a :class:`glimpse.evaluation.masks.MaskResult` with one pair per
    object (a two-object scene gives two pairs: each object's class explained, scored against its own mask).
    """
    if tuple(bundle.labels) != OBJECTS:
        raise ValueError(
            f"bundle: {bundle.model_id} does not classify the shapes scenes' objects; "
            f"expected the labels {', '.join(OBJECTS[:3])}, …"
        )
    images, masks, classes, names = mask_pairs(scenes, seed)
    return mask_scores(bundle, images, masks, methods, names=names, targets=classes, k=k, seed=seed, progress=progress)
