"""The small CNN of the embedded toy classifiers (BlockDigits, shapes): three 3×3 conv + ReLU + 2×2 max-pool
stages, then a two-layer head. No global pooling: the head sees where in the image a feature is."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class SmallCNN(nn.Module):
    """(B, 3, H, W) -> logits (B, classes); ``widths`` channels per stage, H and W divisible by 8.

    Module paths (the CAM layers and the checkpoints' keys): ``features.conv1/act1/pool1 … conv3/act3/pool3``,
    ``head.fc1/act/fc2``.
    """

    def __init__(self, input_hw: tuple[int, int], widths: tuple[int, int, int], hidden: int, classes: int) -> None:
        super().__init__()
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        channels = 3
        for i, width in enumerate(widths, start=1):
            stages[f"conv{i}"] = nn.Conv2d(channels, width, 3, padding=1)
            stages[f"act{i}"] = nn.ReLU()
            stages[f"pool{i}"] = nn.MaxPool2d(2)
            channels = width
        self.features = nn.Sequential(stages)
        flat = channels * (input_hw[0] // 8) * (input_hw[1] // 8)
        self.head = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(), fc1=nn.Linear(flat, hidden), act=nn.ReLU(), fc2=nn.Linear(hidden, classes)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


#: the suggested CAM layers of a SmallCNN (post-ReLU maps), deepest first
TARGET_LAYERS = ("features.act3", "features.act2", "features.act1")
