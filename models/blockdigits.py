"""The BlockDigits classifiers: one small CNN trained normally and one trained adversarially (PGD).

Both read a BlockDigits image (:mod:`glimpse.evaluation.blockdigits`: a digit block and a fixed null block,
stacked, 64×32, grey in three channels) and say which digit it holds. Their weights ship in
``models/embedded/blockdigits/`` (safetensors, with the model card); ``training/blockdigits/`` trains them.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

WEIGHTS_DIR = Path(__file__).parent / "embedded" / "blockdigits"
#: classifier ids (the registry's) -> checkpoint file
CHECKPOINTS = {"blockdigits-standard": "standard.safetensors", "blockdigits-robust": "robust.safetensors"}
#: model input = (pixel / 255 - MEAN) / STD in every channel
MEAN, STD = 0.5, 0.5
#: CAM layers, the suggested one first (post-ReLU maps)
TARGET_LAYERS = ("features.act3", "features.act2", "features.act1")


class BlockDigitsCNN(nn.Module):
    """Three 3×3 conv + ReLU stages (16, 32, 64 channels; max-pool after each), then a two-layer head.

    (B, 3, 64, 32) -> logits (B, 10). No global pooling: the head sees where in the image a feature is.
    """

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 16, 3, padding=1),
                act1=nn.ReLU(),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(16, 32, 3, padding=1),
                act2=nn.ReLU(),
                pool2=nn.MaxPool2d(2),
                conv3=nn.Conv2d(32, 64, 3, padding=1),
                act3=nn.ReLU(),
                pool3=nn.MaxPool2d(2),
            )
        )
        self.head = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(), fc1=nn.Linear(64 * 8 * 4, 128), act=nn.ReLU(), fc2=nn.Linear(128, classes)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def load_blockdigits_cnn(model_id: str) -> BlockDigitsCNN:
    """The shipped weights of ``model_id`` (``blockdigits-standard`` or ``blockdigits-robust``), on the CPU."""
    from safetensors.torch import load_file

    model = BlockDigitsCNN()
    model.load_state_dict(load_file(WEIGHTS_DIR / CHECKPOINTS[model_id]))
    return model.eval()
