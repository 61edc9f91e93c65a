"""Targets: top-1 by default, a class by name, and a contrast (A − B)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glimpse.saliency import Target, explain, make_target, target_label, top1
from tests.tiny_models import cnn_bundle, image


@pytest.fixture(scope="module")
def bundle():
    return cnn_bundle()


def test_default_target_is_top1(bundle):
    img = image()
    (m,) = explain(bundle, img, ["gradient"])
    with torch.no_grad():
        top = int(bundle.model(bundle.preprocess(img)).argmax())
    assert m.target == Target(top) and m.target_label == bundle.labels[top]


def test_top1_is_one_class_for_explain_make_target_and_predict(bundle):
    for seed in range(5):
        img = image(seed=seed)
        index = top1(bundle, img)
        assert index == bundle.predict(img, top=1)[0][0] == top1(bundle, bundle.preprocess(img))
        assert make_target(bundle, None, image=img) == Target(index)
        assert explain(bundle, img, ["gradient"])[0].target == Target(index)
    with pytest.raises(ValueError, match="image: expected one image"):
        top1(bundle, bundle.preprocess_batch([image(), image()]))


def test_target_by_name_and_index(bundle):
    assert make_target(bundle, "banana") == Target(1)
    assert make_target(bundle, "palm") == Target(3)
    assert make_target(bundle, 4, contrast="apple") == Target(4, 0)
    assert make_target(bundle, None, image=image()).index == explain(bundle, image(), ["gradient"])[0].target.index
    with pytest.raises(ValueError, match="target: no class matches"):
        make_target(bundle, "kiwi")
    with pytest.raises(ValueError, match="contrast class must differ"):
        Target(2, 2)
    with pytest.raises(ValueError, match="target: class index 7 outside"):
        explain(bundle, image(), ["gradient"], target=7)


def test_contrast_explains_the_difference_of_logits(bundle):
    img = image()
    a, b = 1, 2
    (diff,) = explain(bundle, img, ["gradient"], target=Target(a, contrast=b))
    (ga,) = explain(bundle, img, ["gradient"], target=a)
    (gb,) = explain(bundle, img, ["gradient"], target=b)
    np.testing.assert_allclose(diff.values, ga.values - gb.values, rtol=1e-5, atol=1e-6)
    assert diff.target_label == "banana − cherry" == target_label(bundle, Target(a, b))
    # a contrast DeepLIFT map sums to the change of the logit difference
    (d,) = explain(bundle, img, ["deeplift"], target=Target(a, contrast=b))
    assert d.completeness_gap < 1e-4


@pytest.mark.parametrize("baseline", ["black", "blurred", "uniform"])
def test_integrated_gradients_is_complete_within_one_percent(bundle, baseline):
    (m,) = explain(bundle, image(), [("integrated_gradients", {"steps": 128, "baseline": baseline})], target=3)
    assert m.completeness_gap < 0.01
