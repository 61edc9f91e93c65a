"""Localisation scores against a known region: the pointing game, relevance mass and rank, top-k IoU."""

import math

import numpy as np
import pytest

from glimpse.evaluation.localisation import pointing_game, relevance_mass, relevance_rank, top_share, topk_iou


def test_pointing_game_and_relevance_mass():
    values = np.zeros((10, 10))
    values[2, 3] = 5.0
    values[8, 8] = 1.0
    values[0, 0] = -4.0
    mask = np.zeros((10, 10), bool)
    mask[1:4, 2:5] = True
    assert pointing_game(values, mask)
    assert not pointing_game(values, ~mask & (values != 5.0) | (np.arange(100).reshape(10, 10) == 99))
    assert relevance_mass(values, mask) == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="mask"):
        relevance_mass(values, np.zeros((3, 3), bool))


def test_pointing_game_tolerance_and_ties():
    values = np.zeros((9, 9))
    values[4, 7] = 1.0
    mask = np.zeros((9, 9), bool)
    mask[4, 4] = True
    assert not pointing_game(values, mask)
    assert not pointing_game(values, mask, tolerance=2) and pointing_game(values, mask, tolerance=3)
    assert pointing_game(np.ones((9, 9)), mask)  # ties: any maximum inside is a hit
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(values, mask, tolerance=-1)


def test_mass_is_nan_without_positive_values_and_shapes_must_match():
    mask = np.eye(3, dtype=bool)
    assert math.isnan(relevance_mass(-np.ones((3, 3)), mask))
    with pytest.raises(ValueError, match="differs"):
        relevance_rank(np.ones((3, 4)), mask)


def test_ties_count_in_proportion_so_a_constant_map_scores_chance():
    mask = np.zeros((10, 10), bool)
    mask[:5] = True  # half the image
    flat = np.ones((10, 10))
    assert relevance_rank(flat, mask) == pytest.approx(0.5)
    assert top_share(flat, mask, 10) == pytest.approx(0.5)
    # top 10 %: 10 places, 5 expected inside: IoU = 5 / (10 + 50 - 5)
    assert topk_iou(flat, mask, 10) == pytest.approx(5 / 55)
    with pytest.raises(ValueError, match="k"):
        topk_iou(flat, mask, 0)
