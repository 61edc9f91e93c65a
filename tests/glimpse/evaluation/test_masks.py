"""Ground-truth masks: the localisation metrics on maps whose answer is known, mask loading and its errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from glimpse.evaluation.localisation import relevance_rank, top_share, topk_iou
from glimpse.evaluation.masks import load_mask, mask_scores
from models.registry import ClassifierBundle


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_rank_and_iou_on_known_maps():
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    inside = np.where(mask, 1.0, 0.0)
    assert relevance_rank(inside, mask) == 1.0 and relevance_rank(-inside, mask) == 0.0
    assert topk_iou(inside, mask, 25) == 1.0  # the top 4 pixels are exactly the mask
    assert topk_iou(inside, mask, 50) == pytest.approx(0.5)  # 8 pixels, 4 of them the mask
    assert relevance_rank(np.ones((4, 4)), mask) == pytest.approx(0.25)  # all tied: chance
    with pytest.raises(ValueError, match="^n"):
        top_share(inside, mask, 0)


def test_load_mask_and_its_errors():
    drawn = np.zeros((6, 8), np.uint8)
    drawn[1:3, 2:5] = 255
    mask = load_mask(_png(drawn), (6, 8))
    assert mask.dtype == bool and mask.sum() == 6
    with pytest.raises(ValueError, match="its image is 9×6"):
        load_mask(_png(drawn), (6, 9))
    soft = drawn.copy()
    soft[0, 0] = 128
    with pytest.raises(ValueError, match="not binary"):
        load_mask(_png(soft))
    with pytest.raises(ValueError, match="all black"):
        load_mask(_png(np.zeros((6, 8), np.uint8)))
    with pytest.raises(ValueError, match="all white"):
        load_mask(_png(np.full((6, 8), 255, np.uint8)))


class ReadsRegion(nn.Module):
    """Two classes decided by a linear layer over one region (``rows``, ``cols``) of a ``side``×``side``
    image: every gradient lies there, and the rest of the image changes nothing (the answer is known)."""

    def __init__(self, side: int, rows: slice, cols: slice) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rows, self.cols = rows, cols
        self.fc = nn.Linear(3 * len(range(side)[rows]) * len(range(side)[cols]), 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x[:, :, self.rows, self.cols].flatten(1))


def region_bundle(model_id: str, side: int, rows: slice, cols: slice) -> ClassifierBundle:
    """A CPU bundle of :class:`ReadsRegion`, inputs (pixel/255 − 0.5) / 0.5."""
    model = ReadsRegion(side, rows, cols).eval()
    return ClassifierBundle(model_id, model, ("a", "b"), (side, side), (0.5,) * 3, (0.5,) * 3, (), torch.device("cpu"))


def test_a_map_on_the_mask_scores_perfectly_and_pairs_must_match():
    bundle = region_bundle("left", 8, slice(None), slice(None, 4))  # the left half
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    left = np.zeros((8, 8), bool)
    left[:, :4] = True
    result = mask_scores(bundle, [image], [left], ["gradient_abs"], k=50)
    (row,) = result.rows()
    assert row["pointing_game"] == 1.0 and row["relevance_rank"] == 1.0 and row["topk_iou"] == 1.0
    assert result.meta()["targets"] == [result.targets[0]] and result.meta()["benchmark"] == "masks"
    with pytest.raises(ValueError, match="1 masks for 2 images"):
        mask_scores(bundle, [image, image], [left], ["gradient"])
    with pytest.raises(ValueError, match="^mask"):
        mask_scores(bundle, [image], [left[:4]], ["gradient"])
