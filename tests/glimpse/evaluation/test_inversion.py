"""Feature inversion on the paper's synthetic data: the data, the scores, and the paper's sign end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glimpse.evaluation.inversion import (
    FCN,
    feature_inversion,
    inversion_scores,
    loss_gradients,
    signal_coordinates,
)


def test_the_data_is_one_signed_coordinate_per_point_and_deterministic():
    a, b = signal_coordinates(4000, seed=3), signal_coordinates(4000, seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert bool(((a.x != 0).sum(1) == 1).all())
    assert torch.equal(a.x.abs().argmax(1), a.signal)
    assert torch.equal((a.x.sum(1) > 0).long(), a.y)  # the sign of the signal is the label
    # coordinate 0 carries the signal with probability 1/d, each other one with (1 - 1/d)/(d - 1)
    share = np.bincount(a.signal.numpy(), minlength=10) / len(a.signal)
    assert share == pytest.approx(np.full(10, 0.1), abs=0.02)
    assert not torch.equal(signal_coordinates(50, seed=4).x, a.x[:50])


def test_a_gradient_that_is_the_input_points_at_the_signal():
    data = signal_coordinates(100, seed=0)
    assert inversion_scores(data.x.abs().numpy(), data.signal.numpy()) == {
        "p_top_signal": 1.0,
        "p_bottom_signal": 0.0,
        "attribution_quality": 1.0,
    }
    # ... and one that is zero on the signal and flat elsewhere is the paper's inversion
    inverted = 1.0 - data.x.abs().numpy()
    assert inversion_scores(inverted, data.signal.numpy())["attribution_quality"] == -1.0
    with pytest.raises(ValueError, match="gradients"):
        inversion_scores(np.ones((3, 4)), np.zeros(2))


def test_loss_gradients_of_a_linear_model_are_its_weights_scaled_by_the_loss():
    model = FCN(4, 3)
    data = signal_coordinates(5, d=4, seed=0)
    got = loss_gradients(model, data)
    x = data.x.clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(model(x), data.y, reduction="sum").backward()
    assert got.shape == (5, 4) and np.allclose(got, x.grad.abs().numpy())


@pytest.mark.slow
def test_standard_gradients_invert_robust_ones_do_not():
    """The paper's sign, at the defaults: the standard network's top gradient coordinate is almost never the
    signal and its DiffROAR at one kept coordinate is negative; the robust network's are the opposite."""
    result = feature_inversion(levels=(0.1,), seeds=(0,), retrain_epochs=3)
    standard, robust = result.models
    assert standard.test_accuracy > 0.95 and robust.test_accuracy > 0.95
    assert standard.scores["p_top_signal"] < 0.1 < 0.7 < robust.scores["p_top_signal"]
    assert standard.scores["attribution_quality"] < -0.3 and robust.scores["attribution_quality"] > 0.5
    assert standard.curve.diffroar[0, 0] < -0.2 and robust.curve.diffroar[0, 0] > 0.2
    rows = result.rows()
    assert [r["model"] for r in rows] == ["standard", "robust"] and list(rows[0]["diffroar"]) == ["0.1"]
    assert result.meta(versions=False)["paper"]["p_top_signal"] == {"standard": 0.041, "robust": 1.0}
