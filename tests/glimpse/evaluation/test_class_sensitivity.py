"""Class sensitivity (Rebuffi et al. 2020) on models whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from glimpse.evaluation.sensitivity import class_sensitivity, extreme_classes
from models.registry import ClassifierBundle


class SharedFeature(nn.Module):
    """Logits g(x) + c_k: every class depends on the input the same way, so every class gets the same map."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(weights.flatten(), requires_grad=False)
        self.register_buffer("offsets", torch.tensor([0.0, 2.0, -3.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = (x.flatten(1) @ self.w).unsqueeze(1)
        return g + self.offsets


class Opposite(nn.Module):
    """Two classes reading the input with opposite weights: their gradient maps are each other's negative."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(weights.flatten(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x.flatten(1) @ self.w
        return torch.stack([g, -g], dim=1)


def _bundle(model: nn.Module, classes: int) -> ClassifierBundle:
    return ClassifierBundle(
        model_id="analytic",
        model=model.eval(),
        labels=tuple(str(k) for k in range(classes)),
        input_size=(8, 8),
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        target_layers=(),
        device=torch.device("cpu"),
    )


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)]


def test_identical_maps_for_every_class_score_one(images):
    weights = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(0))
    bundle = _bundle(SharedFeature(weights), 3)
    assert extreme_classes(bundle, images[0]) == (1, 2)
    result = class_sensitivity(bundle, images, ["gradient", "gradient_abs"])
    np.testing.assert_allclose(result.rho, 1.0)
    rows = result.rows()
    assert rows[0]["class_sensitivity"] == pytest.approx(1.0) and rows[0]["images"] == 3
    assert result.meta()["classes"] == [[1, 2]] * 3


def test_opposite_evidence_scores_minus_one_and_absolute_maps_cannot_tell(images):
    weights = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(1))
    result = class_sensitivity(_bundle(Opposite(weights), 2), images, ["gradient", "gradient_abs"])
    np.testing.assert_allclose(result.rho[0], -1.0)  # signed gradients flip with the class
    np.testing.assert_allclose(result.rho[1], 1.0)  # |gradient| is the same map for both


def test_bad_input_is_refused():
    bundle = _bundle(SharedFeature(torch.ones(3, 8, 8)), 3)
    with pytest.raises(ValueError, match="^images"):
        class_sensitivity(bundle, [], ["gradient"])
    with pytest.raises(ValueError, match="unknown"):
        class_sensitivity(bundle, [np.zeros((8, 8, 3), np.uint8)], ["nope"])
