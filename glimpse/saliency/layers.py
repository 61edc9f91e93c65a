"""What a layer's activations look like for one image: do CAM formulas' assumptions hold there?

Grad-CAM++ (Chattopadhay et al., WACV 2018) and Smooth Grad-CAM++ derive their weights
α = g² / (2g² + Σ A·g³) for non-negative activations A (the output of a ReLU). At a layer whose channels
sum negative, the denominator can vanish or change sign and α leaves [0, 1] by orders of magnitude (as
at EfficientNet-Lite0's ``blocks.*`` outputs, which have no activation after the projection), so the map
stops meaning what the paper says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from glimpse.saliency.contract import capture, to_grid


@dataclass(frozen=True)
class LayerActivations:
    """Summary of one layer's activations A (C, h, w) for one image."""

    layer: str
    channels: int
    negative_channels: int  # channels c with Σ_ij A_cij < 0
    min_value: float

    @property
    def nonnegative(self) -> bool:
        """Every activation is ≥ 0 (a post-ReLU map), as Grad-CAM++'s weights assume."""
        return self.min_value >= 0.0


def layer_activations(bundle, image: np.ndarray, layer: str) -> LayerActivations:
    """One forward pass of ``image`` through ``bundle``'s model, summarising the output of ``layer``.

    Parameters
    ----------
    bundle : ClassifierBundle
        The classifier; its lock is held while the hook is installed.
    image : np.ndarray
        uint8 RGB (H, W, 3).
    layer : str
        Module path (see ``bundle.target_layers``).

    Raises
    ------
    ValueError
        Unknown layer, or a layer whose output is not a feature map.
    """
    bundle.module(layer)  # validates, naming the suggested layers
    with bundle.lock, torch.no_grad(), capture(bundle, [layer]) as cap:
        bundle.model(bundle.preprocess(image))
        acts = to_grid(cap.get(layer).detach(), bundle)[0].float()
    sums = acts.sum(dim=(1, 2))
    return LayerActivations(
        layer=layer,
        channels=int(acts.shape[0]),
        negative_channels=int((sums < 0).sum()),
        min_value=float(acts.min()),
    )
