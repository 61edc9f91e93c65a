"""Agreement metrics on hand-built maps whose answers are known."""

import math

import numpy as np
import pytest

from glimpse.compare import agreement_matrix, common_grid, pointing_game, spearman, top_k_iou, top_k_mask


def ramp(h=10, w=10):
    return np.arange(h * w, dtype=np.float64).reshape(h, w)


def test_spearman_identity_reversal_and_monotone_transform():
    a = ramp()
    assert spearman(a, a) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.exp(a / 10)) == pytest.approx(1.0)  # ranks only


def test_spearman_known_value_and_constant_is_nan():
    a = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    b = np.array([[5.0, 6.0, 7.0, 8.0, 7.0]])
    # ranks b = 1, 2, 3.5, 5, 3.5 -> scipy's spearmanr gives 0.8207826816681233
    assert spearman(a, b) == pytest.approx(0.8207826816681233)
    assert math.isnan(spearman(a, np.ones_like(a)))


def test_absolute_makes_sign_irrelevant():
    a = ramp() - 50
    assert spearman(a, np.abs(a), absolute=True) == pytest.approx(1.0)
    assert spearman(a, np.abs(a)) < 0.5


def test_top_k_mask_counts_and_ties():
    mask = top_k_mask(ramp(), 20)
    assert mask.sum() == 20 and mask[-2:].all()
    assert top_k_mask(np.ones((4, 4)), 10).all()  # ties at the threshold are kept
    with pytest.raises(ValueError, match="k:"):
        top_k_mask(ramp(), 0)
    with pytest.raises(ValueError, match="values:"):
        top_k_mask(np.ones(5), 10)


def test_top_k_iou_known_overlap():
    a = np.zeros((10, 10))
    b = np.zeros((10, 10))
    a[:2] = 1  # top 20 % = rows 0-1
    b[1:3] = 1  # top 20 % = rows 1-2
    a += ramp() * 1e-6  # break ties so exactly 20 pixels are kept
    b += ramp() * 1e-6
    assert top_k_iou(a, b, 20) == pytest.approx(10 / 30)
    assert top_k_iou(a, a, 20) == pytest.approx(1.0)


def test_pointing_game_is_asymmetric():
    a = np.zeros((10, 10))
    a[2, 2] = 5.0  # a's peak
    b = np.zeros((10, 10))
    b[:5, :5] = 1.0 + ramp(5, 5) * 1e-3  # b's top 25 % region = the top-left quadrant
    b[9, 9] = 10.0  # b's peak lies outside a's top region
    assert pointing_game(a, b, 25)
    assert not pointing_game(b, a, 1)


def test_common_grid_downsamples_to_the_coarsest():
    a, b = common_grid(np.ones((224, 224)), np.ones((7, 14)))
    assert a.shape == b.shape == (7, 14)
    a, b = common_grid(np.ones((20, 20)), np.ones((7, 7)), size=(10, 10))
    assert a.shape == (10, 10)


def test_matrix_matches_pairwise_functions_and_different_sizes():
    rng = np.random.default_rng(0)
    maps = {"a": rng.random((32, 32)), "b": rng.random((16, 16)), "c": -rng.random((32, 32))}
    m = agreement_matrix(maps, k=10)
    assert m.names == ("a", "b", "c") and m.size == (16, 16)
    np.testing.assert_allclose(np.diag(m.spearman), 1.0)
    np.testing.assert_allclose(m.spearman, m.spearman.T)
    grids = common_grid(*maps.values())
    assert m.spearman[0, 2] == pytest.approx(spearman(grids[0], grids[2]))
    assert m.iou[1, 2] == pytest.approx(top_k_iou(grids[1], grids[2], 10))
    assert m.pointing[2, 0] == float(pointing_game(grids[2], grids[0], 10))
    rows = m.rows()
    assert len(rows) == 6 and {"map_a", "map_b", "spearman", "top_10pct_iou", "pointing_a_in_b"} <= set(rows[0])
    with pytest.raises(ValueError, match="metric: unknown"):
        m.metric("nope")


def test_matrix_needs_two_finite_maps():
    with pytest.raises(ValueError, match="maps: need at least two"):
        agreement_matrix({"a": ramp()})
    with pytest.raises(ValueError, match="NaN"):
        agreement_matrix({"a": ramp(), "b": np.full((3, 3), np.nan)})
