"""The BlockDigits classifiers: one small CNN trained normally and one trained adversarially (PGD).

Both read a BlockDigits image (:mod:`glimpse.evaluation.blockdigits`: a digit block and a fixed null block,
stacked, 64×32, grey in three channels) and say which digit it holds. Their weights ship in
``models/embedded/blockdigits/`` (safetensors, with the model card); ``training/blockdigits/`` trains them.
"""

from __future__ import annotations

from pathlib import Path

from models.small_cnn import SmallCNN

WEIGHTS_DIR = Path(__file__).parent / "embedded" / "blockdigits"
#: classifier ids (the registry's) -> checkpoint file
CHECKPOINTS = {"blockdigits-standard": "standard.safetensors", "blockdigits-robust": "robust.safetensors"}
#: model input = (pixel / 255 - MEAN) / STD in every channel
MEAN, STD = 0.5, 0.5


class BlockDigitsCNN(SmallCNN):
    """16, 32, 64 channels, then 2048 → 128 → 10: (B, 3, 64, 32) -> logits (B, 10)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__((64, 32), (16, 32, 64), 128, classes)


def load_blockdigits_cnn(model_id: str) -> BlockDigitsCNN:
    """The shipped weights of ``model_id`` (``blockdigits-standard`` or ``blockdigits-robust``), on the CPU."""
    from safetensors.torch import load_file

    model = BlockDigitsCNN()
    model.load_state_dict(load_file(WEIGHTS_DIR / CHECKPOINTS[model_id]))
    return model.eval()
