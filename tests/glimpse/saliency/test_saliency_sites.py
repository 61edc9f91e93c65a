"""DeepLIFT on a network that calls one in-place ReLU at two sites, as torchvision's ResNet blocks do (the extras
tests run the ResNet itself): it runs, keeps summation-to-delta, and leaves the shared model as it was."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from glimpse.saliency import explain
from tests.tiny_models import image, tiny_bundle


class SharedReLU(nn.Module):
    """conv -> relu -> conv -> (+ skip) -> relu -> pool -> linear, one ``nn.ReLU(inplace=True)`` at both sites."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 5)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        h = self.relu(self.conv1(x))
        h = self.relu(self.conv2(h) + h)
        return self.fc(self.pool(h).flatten(1))


def test_deeplift_runs_on_a_shared_in_place_relu_and_adds_up():
    bundle = tiny_bundle("shared-relu", SharedReLU(), ("conv2",))
    (m,) = explain(bundle, image(), ["deeplift"], target=2)
    assert np.isfinite(m.values).all() and np.abs(m.values).max() > 0
    assert m.completeness_gap is not None and m.completeness_gap < 1e-4
    assert bundle.model.relu.inplace and isinstance(bundle.model.relu, nn.ReLU)
    assert not any(mod._forward_hooks or mod._backward_hooks for mod in bundle.model.modules())
