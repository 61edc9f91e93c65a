"""Thresholded IoU and the content-vs-style separation ("The Cow of Rembrandt") on hand-built maps."""

import math

import numpy as np
import pytest

from glimpse.attention.metrics import (
    binarize,
    content_style_separation,
    iou,
    iou_matrix,
    thresholded_iou,
)


def _blob(y0, y1, x0, x1, size=16, low=0.0):
    m = np.full((size, size), low, dtype=np.float32)
    m[y0:y1, x0:x1] = 1.0
    return m


def test_binarize_absolute_is_daam_rule_and_scale_free():
    m = np.array([[0.0, 1.0], [2.0, 4.0]])
    assert binarize(m, 0.4).tolist() == [[False, False], [True, True]]
    # min-max normalisation: an affine change of the map does not change the mask
    assert (binarize(3 * m + 7, 0.4) == binarize(m, 0.4)).all()


def test_binarize_quantile_keeps_top_fraction():
    m = np.arange(100, dtype=float).reshape(10, 10)
    assert binarize(m, 0.8, mode="quantile").sum() == 20


def test_constant_map_gives_empty_mask_and_nan_iou():
    flat = np.ones((8, 8))
    assert not binarize(flat, 0.4).any()
    assert math.isnan(iou(binarize(flat, 0.4), binarize(flat, 0.4)))


def test_identical_maps_iou_one_disjoint_zero():
    a = _blob(0, 8, 0, 8)
    b = _blob(8, 16, 8, 16)
    assert iou(binarize(a), binarize(a)) == 1.0
    assert iou(binarize(a), binarize(b)) == 0.0
    half = _blob(0, 8, 0, 4)  # half of a
    assert iou(binarize(a), binarize(half)) == pytest.approx(0.5)


def test_thresholded_iou_against_object_mask():
    m = _blob(2, 6, 2, 6)
    m[3, 3] = 2.0  # a peak inside the object keeps the normalised blob at 0.5
    obj = _blob(2, 6, 2, 6) > 0
    assert thresholded_iou(m, obj, 0.4) == 1.0
    assert thresholded_iou(m, obj, 0.6) == pytest.approx(1 / 16)
    with pytest.raises(ValueError, match="mask"):
        thresholded_iou(m, obj[:4], 0.4)


def test_iou_matrix_symmetric_with_unit_diagonal():
    maps = np.stack([_blob(0, 8, 0, 8), _blob(0, 8, 4, 12), _blob(8, 16, 8, 16)])
    mat = iou_matrix(maps, 0.4)
    assert np.allclose(mat, mat.T)
    assert np.allclose(np.diag(mat), 1.0)
    assert mat[0, 1] == pytest.approx(1 / 3)
    assert mat[0, 2] == 0.0


def test_delta_positive_when_content_and_style_are_separated():
    # words 0..2 share a region; "cow" and "rembrandt" are disjoint
    shared = _blob(0, 10, 0, 10)
    words = ["a", "painting", "of", "cow", "rembrandt"]
    maps = np.stack([shared, shared, shared, _blob(0, 6, 0, 6), _blob(10, 16, 10, 16)])
    sep = content_style_separation(maps, words, "cow", "rembrandt", threshold=0.4)
    assert sep.iou == 0.0
    assert sep.baseline_pairs == 9
    assert sep.baseline_mean > 0
    assert sep.delta == pytest.approx(sep.baseline_mean - sep.iou)
    assert sep.delta > 0
    assert (sep.word_a, sep.word_b) == ("cow", "rembrandt")


def test_delta_negative_when_the_pair_overlaps_more_than_others():
    words = ["cow", "rembrandt", "x", "y"]
    maps = np.stack([_blob(0, 8, 0, 8), _blob(0, 8, 0, 8), _blob(8, 16, 0, 8), _blob(0, 8, 8, 16)])
    sep = content_style_separation(maps, words, 0, 1)
    assert sep.iou == 1.0
    assert sep.delta < 0
    assert sep.baseline_std >= 0


def test_separation_errors_name_the_parameter():
    maps = np.stack([_blob(0, 8, 0, 8)] * 3)
    with pytest.raises(ValueError, match="^b: the same word"):
        content_style_separation(maps, ["a", "b", "c"], 1, "b")
    with pytest.raises(ValueError, match="^a: 'z' is not a word"):
        content_style_separation(maps, ["a", "b", "c"], "z", "b")
    with pytest.raises(ValueError, match="occurs 2 times"):
        content_style_separation(maps, ["a", "b", "a"], "a", "b")
    with pytest.raises(ValueError, match="^words: 2 words"):
        content_style_separation(maps[:2], ["a", "b"], 0, 1)
    with pytest.raises(ValueError, match="^maps"):
        content_style_separation(maps, ["a", "b"], 0, 1)
    with pytest.raises(ValueError, match="^threshold"):
        binarize(maps[0], 1.5)
    with pytest.raises(ValueError, match="^mode: unknown 'top'"):
        binarize(maps[0], 0.5, mode="top")
