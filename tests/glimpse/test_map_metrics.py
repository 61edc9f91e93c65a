"""The one map-metric module: binarising, the top-k region and its tie rules, IoU, Spearman.

Each rule is checked on maps whose answer is known, against its definition written out independently here
(scipy's Spearman, the quantile top region, random tie-breaking for the shared ties), and as the rule the
older copies used, so that the numbers the app reports stay the same.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from glimpse.map_metrics import (
    EMPTY_IOU,
    binarise,
    check_map,
    iou,
    iou_matrix,
    spearman,
    spearman_matrix,
    top_k_count,
    top_k_iou,
    top_k_mask,
    top_k_overlap,
)


def test_binarise_absolute_is_min_max_then_strict():
    m = np.arange(16, dtype=float).reshape(4, 4)
    assert binarise(m).sum() == 9  # (v - 0) / 15 > 0.4  <=>  v > 6
    assert binarise(m, inclusive=True).sum() == 10  # >= keeps v = 6
    assert (binarise(3 * m - 7) == binarise(m)).all()  # scale- and shift-free
    for inclusive in (False, True):
        assert not binarise(np.ones((4, 4)), 0.0, inclusive=inclusive).any()  # constant: no region


def test_binarise_quantile_and_leading_axes():
    m = np.arange(100.0).reshape(10, 10)
    assert binarise(m, 0.8, mode="quantile").sum() == 20
    stack = np.stack([m, -m])
    assert (binarise(stack)[1] == binarise(-m)).all()
    with pytest.raises(ValueError, match="mode"):
        binarise(m, mode="top")
    with pytest.raises(ValueError, match="threshold"):
        binarise(m, 1.5)
    with pytest.raises(ValueError, match="NaN"):
        binarise(np.full((2, 2), np.nan))


def test_the_older_float32_rule_of_the_shapes_evaluation_is_inclusive_binarise():
    """training/shapes_t2i/evaluate.py normalised in float32 with ``>=``; on float32 maps it agrees."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        m = rng.gamma(0.5, size=(32, 32)).astype(np.float32)
        lo, hi = float(m.min()), float(m.max())
        old = (m - lo) / (hi - lo) >= 0.4
        assert (binarise(m, 0.4, inclusive=True) == old).all()


def test_top_k_region_keeps_ties_and_matches_the_quantile_region():
    ramp = np.arange(100.0).reshape(10, 10)
    assert top_k_mask(ramp, 20).sum() == 20 and top_k_mask(ramp, 20)[-2:].all()
    assert top_k_mask(np.ones((4, 4)), 10).all()  # ties at the cut are kept
    assert top_k_mask(-ramp, 5, absolute=True).sum() == 5
    assert top_k_count(16, 10) == 2 and top_k_count(3, 0.1) == 1
    rng = np.random.default_rng(1)
    for side in (5, 7, 32, 33):  # the lessons' old rule: values >= quantile(values, 0.8)
        v = rng.random((side, side + 2))
        assert (top_k_mask(v, 20) == (v >= np.quantile(v, 0.8))).all()
    with pytest.raises(ValueError, match="k"):
        top_k_mask(ramp, 0)
    with pytest.raises(ValueError, match="2-D"):
        top_k_mask(np.ones(5), 10)
    with pytest.raises(ValueError, match="NaN"):
        check_map(np.array([[np.inf]]))


def test_shared_ties_are_the_expectation_over_random_tie_breaking():
    values = np.array([3.0, 1.0, 1.0, 1.0, 0.0])
    mask = np.array([False, True, False, True, True])
    for n in range(1, 6):
        # every order of the tied pixels equally likely: the mean count of the top n inside the mask
        counts = []
        for order in itertools.permutations(range(5)):
            ranked = sorted(range(5), key=lambda i: (-values[i], order[i]))
            counts.append(mask[ranked[:n]].sum())
        assert top_k_overlap(values, mask, n, ties="share") == pytest.approx(np.mean(counts))
    assert top_k_overlap(values, mask, 2) == 2.0  # kept ties: all three 1s are in the region, two inside
    with pytest.raises(ValueError, match="ties"):
        top_k_overlap(values, mask, 2, ties="random")
    with pytest.raises(ValueError, match="n"):
        top_k_overlap(values, mask, 0)


def test_top_k_iou_with_a_mask_under_both_tie_rules():
    inside = np.zeros((4, 4))
    inside[:2, :2] = 1.0
    mask = inside > 0
    assert top_k_iou(inside + np.arange(16).reshape(4, 4) * 1e-3, mask, 25) == 1.0
    assert top_k_iou(inside, mask, 25, ties="share") == 1.0
    flat = np.ones((4, 4))  # chance: 4 expected of the 4 places, a quarter of them inside
    assert top_k_iou(flat, mask, 25, ties="share") == pytest.approx(1 / (4 + 4 - 1))
    assert top_k_iou(flat, mask, 25) == pytest.approx(4 / 16)  # kept ties: the region is everything


def test_iou_and_its_matrix():
    a = np.zeros((4, 4), bool)
    a[:2] = True
    assert iou(a, a) == 1.0 and iou(a, ~a) == 0.0
    assert math.isnan(iou(np.zeros(3, bool), np.zeros(3, bool))) and math.isnan(EMPTY_IOU)
    with pytest.raises(ValueError, match="shape"):
        iou(a, a[:2])
    masks = [a, ~a, a & ~a, np.ones((4, 4), bool)]
    matrix = iou_matrix(masks)
    for i, j in itertools.product(range(4), repeat=2):
        expected = iou(masks[i], masks[j])
        assert (math.isnan(expected) and math.isnan(matrix[i, j])) or matrix[i, j] == expected


def test_spearman_is_scipys_and_the_matrix_is_pairwise():
    rng = np.random.default_rng(2)
    maps = [rng.normal(size=(6, 7)), rng.integers(0, 3, size=(6, 7)).astype(float), rng.normal(size=(6, 7))]
    for a, b in itertools.combinations(maps, 2):
        assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-12)
    matrix = spearman_matrix(maps)
    assert np.allclose(np.diag(matrix), 1.0) and np.allclose(matrix, matrix.T)
    assert matrix[0, 2] == pytest.approx(spearman(maps[0], maps[2]), abs=1e-15)
    assert math.isnan(spearman(np.ones((3, 3)), maps[0][:3, :3]))
    assert np.isnan(spearman_matrix([np.ones((2, 2)), maps[0][:2, :2]])[0, 1])
    with pytest.raises(ValueError, match="resample"):
        spearman(maps[0], maps[0][:3])
