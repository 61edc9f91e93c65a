"""Complexity inside vs outside the salient region, and the complexity maps, on built images."""

import numpy as np
import pytest

from glimpse.compare import colour_density_map, msg_scale_maps, region_complexity


def half_textured(h=64, w=64):
    """Left half: random colours (complex); right half: flat grey."""
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), 128, np.uint8)
    img[:, : w // 2] = rng.integers(0, 256, (h, w // 2, 3), dtype=np.uint8)
    return img


def test_msg_maps_constant_image_is_zero_and_shapes():
    maps = msg_scale_maps(np.full((40, 48, 3), 77, np.uint8))
    assert [m.shape for m in maps] == [(40, 48), (20, 24), (10, 12), (5, 6)]
    assert all(float(np.abs(m).max()) == 0.0 for m in maps)


def test_msg_maps_match_opencv_reference():
    cv2 = pytest.importorskip("cv2")
    img = half_textured(48, 40)
    f = img.astype(np.float32) / 255
    for s, m in zip((1, 2, 4, 8), msg_scale_maps(img)):
        x = f if s == 1 else cv2.resize(f, (f.shape[1] // s, f.shape[0] // s), interpolation=cv2.INTER_LINEAR)
        ref = np.mean(
            [
                np.hypot(cv2.Sobel(x[..., c], cv2.CV_32F, 1, 0), cv2.Sobel(x[..., c], cv2.CV_32F, 0, 1))
                for c in range(3)
            ],
            axis=0,
        )
        np.testing.assert_allclose(m, ref, atol=1e-5)


def test_colour_density_counts_distinct_colours_per_tile():
    img = np.zeros((8, 16, 3), np.uint8)
    img[:, 8:] = 255
    img[0, 8] = (0, 255, 0)
    d = colour_density_map(img, bits=8, block=8)
    np.testing.assert_allclose(d, [[1 / 64, 2 / 64]])
    assert colour_density_map(np.zeros((10, 10, 3), np.uint8), block=8).shape == (2, 2)
    with pytest.raises(ValueError, match="bits:"):
        colour_density_map(img, bits=9)


def test_salient_textured_half_is_more_complex_inside():
    img = half_textured()
    sal = np.zeros((16, 16))
    sal[:, :6] = 1.0 + np.arange(16 * 6).reshape(16, 6) * 1e-6  # salient region inside the textured half
    rc = region_complexity(img, sal, k=25)
    assert rc.fraction == pytest.approx(0.25, abs=0.02)
    assert rc.msg_inside > rc.msg_outside
    assert rc.colours_per_kpx_inside > rc.colours_per_kpx_outside
    flipped = region_complexity(img, -sal, k=25)
    assert flipped.msg_inside < flipped.msg_outside
    assert [r["feature"] for r in rc.rows()][:2] == ["MSG", "MUC4"]


def test_constant_image_has_zero_msg_and_one_colour():
    rc = region_complexity(np.full((32, 32, 3), 9, np.uint8), np.random.default_rng(1).random((8, 8)), k=30)
    assert rc.msg_inside == rc.msg_outside == 0.0
    assert rc.muc_inside == rc.muc_outside == 1.0


def test_region_validates_image():
    with pytest.raises(ValueError, match="image:"):
        region_complexity(np.zeros((32, 32)), np.ones((4, 4)))


def test_maps_are_the_complexity_library_maps():
    from glimpse.complexity.maps import complexity_maps

    img = half_textured(37, 45)  # not a multiple of 8: fractional pyramid levels
    ref = complexity_maps(img, bits=4, window=8)
    for mine, theirs in zip(msg_scale_maps(img), ref.gradient):
        np.testing.assert_array_equal(mine, theirs)
    tiles = np.outer([8] * 4 + [5], [8] * 5 + [5])
    np.testing.assert_allclose(colour_density_map(img, bits=4, block=8) * tiles, ref.colour[0])


def test_whole_image_region_gives_the_image_features():
    from glimpse.complexity import complexity_features

    img = half_textured(37, 45)
    rc = region_complexity(img, np.ones((4, 4)), k=100, bits=5)
    f = complexity_features(img, edges=False)
    assert rc.muc_inside == f.record()["MUC5"]
    assert np.isnan(rc.muc_outside)
    assert rc.msg_inside == pytest.approx(f.msg, rel=1e-3)  # scale maps resampled to H x W before the mean
