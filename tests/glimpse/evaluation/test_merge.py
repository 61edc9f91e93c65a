"""A benchmark run in parts (a page job's steps) and merged is the run in one call: the same numbers, to the bit.

The page runs every per-image benchmark one image (or a few) per step, so Cancel keeps the finished steps and
another session's click waits one step at most; the merged result is what the table, the JSON and the NPZ show.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from glimpse.evaluation.blockdigits import blockdigits
from glimpse.evaluation.leakage import LeakageResult, leakage_benchmark
from glimpse.evaluation.masks import MaskResult, mask_scores
from glimpse.evaluation.pgi import PgiResult, pgi_pgu
from glimpse.evaluation.sensitivity import SensitivityResult, class_sensitivity
from models.registry import ClassifierBundle, load_classifier


class Linear(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 16 * 16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def bundle():
    return ClassifierBundle(
        "linear", Linear().eval(), ("a", "b", "c"), (16, 16), (0.5,) * 3, (0.5,) * 3, (), torch.device("cpu")
    )


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(5)]


def _equal(a, b) -> None:
    """Two results hold the same numbers (NaN where the other has NaN) and say the same about how they were made."""
    assert a.meta(versions=False) == b.meta(versions=False)
    np.testing.assert_equal(a.rows(), b.rows())


def test_leakage_in_parts_equals_one_call():
    model = load_classifier("blockdigits-standard", device="cpu")
    data = blockdigits("test", seed=0)
    methods = ["gradient", ("smoothgrad", {"samples": 4})]
    whole = leakage_benchmark(model, data, methods, images=7, seed=3)
    parts = [leakage_benchmark(model, data, methods, images=n, first=f, seed=3) for f, n in ((0, 3), (3, 3), (6, 1))]
    merged = LeakageResult.merge(parts)
    assert merged.images == 7 and merged.accuracy == pytest.approx(whole.accuracy)
    for a, b in zip(merged.methods, whole.methods):
        np.testing.assert_array_equal(a.signal_mass, b.signal_mass)
        np.testing.assert_array_equal(a.null_topk, b.null_topk)
    assert merged.meta(versions=False) == whole.meta(versions=False)
    assert [r["signal_mass"] for r in merged.rows()] == [r["signal_mass"] for r in whole.rows()]


def test_leakage_refuses_images_past_the_end():
    model = load_classifier("blockdigits-standard", device="cpu")
    data = blockdigits("test", seed=0)
    with pytest.raises(ValueError, match="from image"):
        leakage_benchmark(model, data, ["gradient"], images=5, first=len(data) - 2)


def test_class_sensitivity_in_parts_equals_one_call(bundle, images):
    methods = ["gradient", ("occlusion", {"window": 4, "stride": 4})]
    whole = class_sensitivity(bundle, images, methods, names=list("abcde"))
    parts = [class_sensitivity(bundle, images[s], methods, names=list("abcde")[s]) for s in (slice(0, 2), slice(2, 5))]
    merged = SensitivityResult.merge(parts)
    np.testing.assert_array_equal(merged.rho, whole.rho)
    _equal(merged, whole)


def test_pgi_in_parts_equals_one_call(bundle, images):
    """Each image's noise is seeded by its index in the whole run, so a part says where it starts."""
    how = {"ks": (0.25, 0.5), "draws": 4, "segments": 8, "seed": 1}
    whole = pgi_pgu(bundle, images, ["gradient"], **how)
    parts = [pgi_pgu(bundle, images[f : f + 2], ["gradient"], first=f, **how) for f in (0, 2, 4)]
    merged = PgiResult.merge(
        [dataclasses.replace(p, names=whole.names[2 * i : 2 * i + 2]) for i, p in enumerate(parts)]
    )
    np.testing.assert_array_equal(merged.pgi, whole.pgi)
    np.testing.assert_array_equal(merged.pgu, whole.pgu)
    _equal(merged, whole)
    unseeded = pgi_pgu(bundle, images[2:4], ["gradient"], **how)  # without first: another draw of the noise
    assert not np.array_equal(unseeded.pgi, whole.pgi[:, 2:4])


def test_mask_scores_in_parts_equal_one_call(bundle, images):
    masks = [np.zeros((16, 16), bool) for _ in images]
    for i, m in enumerate(masks):
        m[i : i + 6, 2:9] = True
    whole = mask_scores(bundle, images, masks, ["gradient", "gradient_abs"], targets=[0, 1, 2, 0, 1])
    parts = [
        mask_scores(bundle, images[s], masks[s], ["gradient", "gradient_abs"], targets=[0, 1, 2, 0, 1][s])
        for s in (slice(0, 1), slice(1, 5))
    ]
    merged = MaskResult.merge(
        [dataclasses.replace(p, names=whole.names[s]) for p, s in zip(parts, (slice(0, 1), slice(1, 5)))]
    )
    for metric, values in whole.scores.items():
        np.testing.assert_array_equal(merged.scores[metric], values)
    _equal(merged, whole)


def test_parts_of_two_experiments_do_not_merge(bundle, images):
    a = class_sensitivity(bundle, images[:1], ["gradient"], seed=0)
    b = class_sensitivity(bundle, images[1:2], ["gradient"], seed=1)
    with pytest.raises(ValueError, match="differ in seed"):
        SensitivityResult.merge([a, b])
    with pytest.raises(ValueError, match="nothing to merge"):
        SensitivityResult.merge([])


def test_diffroar_levels_run_one_at_a_time_merge_into_the_curve():
    """The page retrains level by level; the merged curve is the one-call curve (levels in increasing k)."""
    from glimpse.evaluation.diffroar import DiffRoarResult, diffroar

    rng = np.random.default_rng(0)
    train, test = rng.random((40, 1, 6, 6), np.float32), rng.random((20, 1, 6, 6), np.float32)
    train_y, test_y = (train[:, 0, :3].mean((1, 2)) > 0.5).astype(int), (test[:, 0, :3].mean((1, 2)) > 0.5).astype(int)
    maps, test_maps = rng.random((40, 6, 6)), rng.random((20, 6, 6))

    def make():
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(36, 2))

    def run(levels):
        return diffroar(make, train, train_y, test, test_y, maps, test_maps, normalise=lambda x: x, levels=levels,
                        seeds=(0,), epochs=2, method="m")  # fmt: skip

    whole = run((0.2, 0.5))
    merged = DiffRoarResult.merge([run((0.5,)), run((0.2,))])
    assert merged.levels == (0.2, 0.5)
    np.testing.assert_array_equal(merged.diffroar, whole.diffroar)
    assert merged.meta(versions=False) == whole.meta(versions=False)
    with pytest.raises(ValueError, match="share a level"):
        DiffRoarResult.merge([run((0.5,)), run((0.5,))])
