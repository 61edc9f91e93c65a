"""BlockDigits data and the leakage metrics: deterministic data, exact answers on analytic cases, and the
paper's sign on the shipped standard and robust models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from glimpse.evaluation.blockdigits import BLOCK, IMAGE_SHAPE, LABELS, blockdigits, null_patch, split_indices
from glimpse.evaluation.leakage import TOPK, leakage_benchmark, null_topk, signal_mass
from models.registry import ClassifierBundle, load_classifier


def test_data_is_deterministic_and_the_parts_are_disjoint():
    a, b = blockdigits("test", seed=3), blockdigits("test", seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.signal_top, blockdigits("test", seed=4).signal_top)
    assert set(split_indices("train")).isdisjoint(split_indices("test"))
    assert len(split_indices("train")) + len(split_indices("test")) == 1797
    assert a.images.shape == (len(split_indices("test")), *IMAGE_SHAPE) and len(LABELS) == 10
    assert len(blockdigits("train", copies=3)) == 3 * len(split_indices("train"))
    with pytest.raises(ValueError, match="^split"):
        blockdigits("validation")


def test_the_null_block_is_the_same_patch_in_every_image_and_the_signal_block_holds_the_digit():
    data = blockdigits("test", seed=0)
    patch = np.round(null_patch() * 255).astype(np.uint8)
    for i in range(20):
        top, bottom = data.images[i, :BLOCK], data.images[i, BLOCK:]
        null, signal = (bottom, top) if data.signal_top[i] else (top, bottom)
        np.testing.assert_array_equal(null, patch)
        assert not np.array_equal(signal, patch) and signal.max() > 100  # a digit is drawn there
    assert data.signal_top.mean() == pytest.approx(0.5, abs=0.1)
    signal, null = data.signal_masks(), data.null_masks()
    assert (signal ^ null).all() and signal.sum(axis=(1, 2)).tolist() == [BLOCK * BLOCK] * len(data)
    assert data.rgb(0).shape == (*IMAGE_SHAPE, 3) and (data.rgb(0)[..., 0] == data.images[0]).all()


def test_metrics_on_maps_whose_answer_is_known():
    signal = np.zeros(IMAGE_SHAPE, bool)
    signal[:BLOCK] = True
    on_digit = np.where(signal, 1.0, 0.0)
    assert signal_mass(on_digit, signal) == 1.0
    assert [null_topk(on_digit, ~signal, k) for k in TOPK] == [0.0] * len(TOPK)
    assert [null_topk(-on_digit, signal, k) for k in TOPK] == [1.0] * len(TOPK)  # ranked by magnitude
    assert null_topk(np.ones(IMAGE_SHAPE), ~signal, 5) == pytest.approx(0.5)  # all tied: chance
    assert np.isnan(signal_mass(-on_digit, signal))  # nothing positive
    with pytest.raises(ValueError, match="^k"):
        null_topk(on_digit, ~signal, 0)
    with pytest.raises(ValueError, match="^null_mask"):
        null_topk(on_digit, ~signal[:-1], 5)


class ReadsTopBlock(nn.Module):
    """A linear classifier of the top block only: its gradient is exactly zero on the bottom block."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * BLOCK * BLOCK, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x[:, :, :BLOCK].flatten(1))


def _bundle(model: nn.Module) -> ClassifierBundle:
    return ClassifierBundle(
        model_id="reads-top",
        model=model.eval(),
        labels=LABELS,
        input_size=IMAGE_SHAPE,
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        target_layers=(),
        device=torch.device("cpu"),
    )


def _subset(data, keep: np.ndarray):
    return dataclasses.replace(
        data,
        images=data.images[keep],
        labels=data.labels[keep],
        signal_top=data.signal_top[keep],
        digit_index=data.digit_index[keep],
    )


def test_a_model_that_reads_only_the_signal_block_leaks_nothing():
    data = blockdigits("test", seed=0)
    bundle = _bundle(ReadsTopBlock())
    result = leakage_benchmark(bundle, _subset(data, data.signal_top), ["gradient", "gradient_abs"], images=4)
    for row in result.methods:
        np.testing.assert_array_equal(row.null_topk, np.zeros((4, len(TOPK))))
    # the same model when the digit is at the bottom: everything it attributes lies on the null block
    swapped = leakage_benchmark(bundle, _subset(data, ~data.signal_top), ["gradient_abs"], images=4)
    np.testing.assert_array_equal(swapped.methods[0].null_topk, np.ones((4, len(TOPK))))
    np.testing.assert_array_equal(swapped.methods[0].signal_mass, np.zeros(4))
    meta = result.meta()
    assert meta["benchmark"] == "blockdigits-leakage" and meta["images"] == 4 and "torch" in meta["versions"]


def test_the_benchmark_refuses_a_model_of_another_input_size():
    bundle = dataclasses.replace(_bundle(ReadsTopBlock()), input_size=(224, 224))
    with pytest.raises(ValueError, match="takes 224x224"):
        leakage_benchmark(bundle, blockdigits("test"), ["gradient"], images=1)


@pytest.fixture(scope="module")
def shipped():
    return {name: load_classifier(name, device="cpu") for name in ("blockdigits-standard", "blockdigits-robust")}


def test_the_shipped_models_read_digits(shipped):
    data = blockdigits("test", seed=0)
    x = torch.stack([shipped["blockdigits-standard"].preprocess(data.rgb(i))[0] for i in range(len(data))])
    for name, bundle in shipped.items():
        with torch.no_grad():
            accuracy = float((bundle.model(x).argmax(1).numpy() == data.labels).mean())
        assert accuracy > 0.9, name
        assert bundle.labels == LABELS and bundle.input_size == IMAGE_SHAPE


def test_standard_input_gradients_leak_into_the_null_block_and_robust_ones_do_not(shipped):
    """The sign of BlockMNIST's finding: more of the top gradient pixels on the null block when trained normally."""
    data = blockdigits("test", seed=0)
    leak = {
        name: leakage_benchmark(bundle, data, ["gradient_abs"], images=40).methods[0].null_topk.mean(0)
        for name, bundle in shipped.items()
    }
    assert (leak["blockdigits-standard"] > leak["blockdigits-robust"] + 0.05).all(), leak
