"""Deletion/insertion on an analytic model whose evidence lives in a known square."""

import numpy as np
import pytest
import torch
from torch import nn

from glimpse.evaluation import deletion_insertion
from glimpse.evaluation.deletion import pixel_order, substrate
from models.registry import ClassifierBundle

SIZE = 32


def checker() -> torch.Tensor:
    return torch.from_numpy(np.indices((16, 16)).sum(0) % 2 * 2.0 - 1.0).float()


class RegionModel(nn.Module):
    """logit_0 = 8 · (m − ½), m = mean over the top-left 16×16 square of x · checkerboard(±1); logit_1 = 0.

    The evidence is a fine checkerboard in a known square: blurring or blacking it out gives m ≈ 0
    (p ≈ 0.02); the clean square gives m = 1 (p ≈ 0.98); pixels outside the square never matter.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(8.0), requires_grad=False)
        self.register_buffer("checker", checker())
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        s = self.scale * ((x[:, :, :16, :16] * self.checker).mean(dim=(1, 2, 3)) - 0.5)
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def region_bundle() -> ClassifierBundle:
    return ClassifierBundle(
        model_id="region",
        model=RegionModel().eval(),
        labels=("square", "nothing"),
        input_size=(SIZE, SIZE),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        target_layers=(),
        device=torch.device("cpu"),
    )


def region_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(60, 140, size=(SIZE, SIZE, 3), dtype=np.uint8)
    img[:16, :16] = ((checker().numpy() > 0) * 255).astype(np.uint8)[..., None]
    return img


def good_map() -> np.ndarray:
    m = np.zeros((SIZE, SIZE), np.float32)
    m[:16, :16] = 1.0
    return m


def test_right_map_beats_random_map():
    bundle, img = region_bundle(), region_image()
    good = deletion_insertion(bundle, img, good_map(), target=0, steps=16)
    rand = deletion_insertion(bundle, img, np.random.default_rng(1).random((SIZE, SIZE)), target=0, steps=16)
    assert good.deletion_auc < rand.deletion_auc - 0.2
    assert good.insertion_auc > rand.insertion_auc + 0.2
    # Endpoints: nothing deleted = the clean image; everything deleted = the all-black image.
    assert good.deletion_scores[0] == pytest.approx(rand.deletion_scores[0])
    assert good.deletion_scores[0] > 0.97 and good.deletion_scores[-1] < 0.03
    assert good.insertion_scores[-1] == pytest.approx(good.deletion_scores[0], rel=1e-5)
    # Once the square (1/4 of the pixels) is gone the probability is at the floor.
    quarter = np.searchsorted(good.fractions, 0.25)
    assert good.deletion_scores[quarter] < 0.03
    assert good.insertion_scores[0] < 0.05 and good.insertion_scores[quarter] > 0.97


def test_one_batched_forward_per_curve_and_map_resized():
    bundle = region_bundle()
    small = good_map()[::4, ::4]  # 8×8 map: ranked after a bilinear resize to the model input
    res = deletion_insertion(bundle, region_image(), small, target=0, steps=10, batch_size=64)
    assert bundle.model.calls == 2
    assert res.fractions.shape == res.deletion_scores.shape == res.insertion_scores.shape == (11,)
    assert dict(res.params)["steps"] == 10


def test_substrates_and_order():
    bundle = region_bundle()
    x = bundle.preprocess(region_image())
    assert torch.allclose(substrate(bundle, x, "black"), torch.full_like(x, -1.0))
    assert torch.allclose(substrate(bundle, x, "mean").mean(dim=(2, 3)), x.mean(dim=(2, 3)))
    blurred = substrate(bundle, x, "blur")
    assert blurred.shape == x.shape and blurred.std() < x.std()
    order = pixel_order(np.array([[0.0, -3.0], [2.0, 1.0]]), (2, 2), "abs")
    assert order.tolist() == [1, 2, 3, 0]


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"steps": 0}, "steps"),
        ({"deletion_fill": "grey"}, "deletion_fill"),
        ({"rank": "huh"}, "rank"),
        ({"target": 5}, "target"),
    ],
)
def test_errors_name_the_parameter(kwargs, word):
    args = {"target": 0} | kwargs
    with pytest.raises(ValueError, match=word):
        deletion_insertion(region_bundle(), region_image(), good_map(), **args)


def test_curves_of_many_maps_batched_across_images_equal_one_curve_each():
    """deletion_curves (batches across images, as bench.evaluate times it against Quantus) gives each map's
    deletion_insertion curve."""
    from glimpse.evaluation.deletion import deletion_curves

    bundle, img = region_bundle(), region_image()
    rng = np.random.default_rng(3)
    maps = [good_map(), rng.random((SIZE, SIZE)), rng.random((SIZE, SIZE))]
    images = [img, img[::-1].copy(), img]
    batched = deletion_curves(bundle, images, maps, targets=[0, 0, 1], steps=16, batch_size=5)
    for row, image, values, target in zip(batched, images, maps, [0, 0, 1]):
        one = deletion_insertion(bundle, image, values, target=target, steps=16)
        np.testing.assert_allclose(row, one.deletion_scores, rtol=1e-5, atol=1e-6)


def test_a_multilabel_models_curves_track_its_sigmoid_probability():
    """The shapes classifier scores each class by its own sigmoid: a curve's first point is that probability
    (a softmax over its 12 independent logits would be a number the model never gives), batched or alone."""
    from glimpse.evaluation.clutter import clutter_set
    from glimpse.evaluation.deletion import deletion_curves, deletion_insertion
    from models.registry import load_classifier

    bundle = load_classifier("shapes-classifier", device="cpu")
    scenes = clutter_set(1, seed=0)[:3]
    maps = [np.random.default_rng(i).normal(size=(32, 32)) for i in range(3)]
    for scene, values in zip(scenes, maps):
        probability = {i: p for i, _, p in bundle.predict(scene.image, top=12)}[scene.target]
        curve = deletion_insertion(bundle, scene.image, values, target=scene.target, steps=4)
        assert curve.deletion_scores[0] == pytest.approx(probability, rel=1e-5)
    batched = deletion_curves(bundle, [s.image for s in scenes], maps, targets=[s.target for s in scenes], steps=4)
    alone = [
        deletion_insertion(bundle, s.image, v, target=s.target, steps=4).deletion_scores for s, v in zip(scenes, maps)
    ]
    np.testing.assert_allclose(batched, np.stack(alone), rtol=1e-5, atol=1e-7)
