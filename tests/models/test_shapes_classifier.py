"""The embedded shapes classifier: reads fresh scenes, reports each present shape (multi-label), and its maps
land on the object they explain."""

from __future__ import annotations

import numpy as np
import pytest

from glimpse.evaluation.shapes_masks import mask_benchmark
from glimpse.evaluation.shapes_scenes import OBJECTS, CaptionSpec, ObjectSpec, render_scene, two_object_specs
from models.registry import EMBEDDED_CLASSIFIERS, load_classifier
from models.shapes_classifier import LABELS, MODEL_ID, targets


@pytest.fixture(scope="module")
def bundle():
    return load_classifier(MODEL_ID, device="cpu")


def test_it_names_every_shape_present_in_fresh_scenes(bundle):
    assert MODEL_ID in EMBEDDED_CLASSIFIERS and bundle.multilabel and bundle.labels == LABELS == OBJECTS
    assert exact_sets(bundle, 40) >= 38


def exact_sets(bundle, scenes: int, seed: int = 123) -> int:
    """In how many of ``scenes`` fresh two-object scenes the classes above 0.5 are exactly the ones present
    (the shapes CNN's and the shapes ViT's test)."""
    rng = np.random.default_rng(seed)
    pairs = two_object_specs()
    exact = 0
    for _ in range(scenes):
        scene = render_scene(pairs[rng.integers(len(pairs))], rng)
        present = {i for i, _, p in bundle.predict(scene.image, top=12) if p > 0.5}
        exact += present == set(np.flatnonzero(targets(scene.spec).numpy()).tolist())
    return exact


def test_probabilities_are_per_class(bundle):
    spec = CaptionSpec((ObjectSpec("red", "circle"), ObjectSpec("blue", "square")), "to the left of")
    scene = render_scene(spec, np.random.default_rng(0))
    top = bundle.predict(scene.image, top=3)
    assert {top[0][1], top[1][1]} == {"red circle", "blue square"} and top[1][2] > 0.5  # two present, not a share
    assert LABELS.index("red circle") in {top[0][0], top[1][0]}


def test_maps_land_on_the_object_they_explain(bundle):
    result = mask_benchmark(bundle, ["gradient", "gradcam"], scenes=8)
    assert len(result.names) >= 8 and len(set(result.targets)) > 1
    rows = {r["method"]: r for r in result.rows()}
    assert rows["gradcam"]["pointing_game"] >= 0.7 and rows["gradcam"]["relevance_mass"] > 0.3


def test_the_mask_benchmark_needs_a_classifier_of_the_scenes_objects(bundle):
    imagenet = load_classifier(device="cpu")
    with pytest.raises(ValueError, match="does not classify the shapes scenes' objects"):
        mask_benchmark(imagenet, ["gradient"], scenes=1)
