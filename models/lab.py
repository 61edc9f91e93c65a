"""Offline images for the model lab: real pictures of a class without a data set at hand.

- The shapes classifier: rendered scenes that hold the class's shape (alone, or beside another), each scene a
  real sample of the model's own domain.
- Any other classifier: crops (several sizes and positions, and their mirror images) of the shipped sample
  photographs, ranked by the model's probability for the class, so the pool is the views the model finds most
  like it. With ImageNet's 1000 classes, only the classes of the samples (cats, a cup, a rocket, a camera, a
  person) have real members; the page and the command line say so and take a folder instead.
"""

from __future__ import annotations

import numpy as np
import torch

from glimpse.images import sample_crops
from models.bundle import ClassifierBundle


def shapes_scenes_of(label: str, count: int, *, seed: int = 0) -> list[np.ndarray]:
    """``count`` rendered shapes scenes that hold ``label`` ("red circle"): alone or beside one other object."""
    from glimpse.evaluation.shapes_scenes import CaptionSpec, ObjectSpec, render_scene, two_object_specs

    colour, shape = label.split(" ", 1)
    rng = np.random.default_rng(seed)
    single = CaptionSpec((ObjectSpec(colour, shape),))
    pairs = [s for s in two_object_specs() if ObjectSpec(colour, shape) in s.objects]
    out = []
    for k in range(count):
        spec = single if k % 2 == 0 else pairs[int(rng.integers(len(pairs)))]
        out.append(render_scene(spec, rng).image)
    return out


@torch.no_grad()
def class_images(bundle: ClassifierBundle, class_index: int, count: int = 24, *, seed: int = 0) -> list[np.ndarray]:
    """Up to ``count`` offline images for class ``class_index`` of ``bundle`` (see the module docstring)."""
    if bundle.model_id == "shapes-classifier":
        return shapes_scenes_of(bundle.labels[class_index], count, seed=seed)
    pool = sample_crops(seed=seed)
    scores = []
    for start in range(0, len(pool), 16):
        x = bundle.preprocess_batch(pool[start : start + 16])
        logits = bundle.model(x)
        probs = torch.sigmoid(logits) if bundle.multilabel else torch.softmax(logits, dim=-1)
        scores.append(probs[:, class_index].float().cpu().numpy())
    order = np.argsort(-np.concatenate(scores), kind="stable")[:count]
    return [pool[i] for i in order]


def model_input(bundle: ClassifierBundle):
    """The :class:`glimpse.lab.common.ModelInput` of a registry classifier."""
    from glimpse.lab.common import ModelInput

    return ModelInput(tuple(bundle.input_size), tuple(bundle.mean), tuple(bundle.std), bool(bundle.multilabel))


def late_layer(bundle: ClassifierBundle) -> str:
    """The layer whose activations cluster the facets: the suggested CAM layer (the last convolutional block)."""
    return bundle.target_layers[0]
