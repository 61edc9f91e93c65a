"""The one display module: properties every view relies on (value modes, ranges, colour maps, resize, overlay)."""

from __future__ import annotations

import numpy as np
import pytest
from plotly.colors import get_colorscale, sample_colorscale

from glimpse import display

SEEDS = range(5)
MAGNITUDE_MODES = [m for m in display.MODES if m not in display.SIGNED_MODES and m not in ("minmax", "auto")]


def random_map(seed: int, shape=(9, 13)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 10 ** rng.uniform(-6, 3)).astype(np.float32)


# -- value modes and colour ranges -------------------------------------------------------------------
@pytest.mark.parametrize("mode", display.MODES)
@pytest.mark.parametrize("c", [0.0, 0.7, -3.0])
def test_a_constant_map_has_a_finite_non_empty_range(mode, c):
    values = np.full((4, 5), c, np.float32)
    shown = display.shown_values(values, mode)
    lo, hi, mid = display.colour_range(shown, mode, 99.5)
    assert np.isfinite([lo, hi]).all() and hi > lo
    if mode == "minmax":
        assert not shown.any()  # no division by zero: a constant shows as zeros


@pytest.mark.parametrize("seed", SEEDS)
def test_a_signed_map_is_centred_at_zero(seed):
    lo, hi, mid = display.colour_range(random_map(seed), "signed", 99.0)
    assert mid == 0.0 and lo == -hi and hi > 0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mode", MAGNITUDE_MODES)
def test_magnitude_modes_start_at_zero(seed, mode):
    shown = display.shown_values(random_map(seed), mode)
    lo, hi, mid = display.colour_range(shown, mode, 99.0)
    assert lo == 0.0 and mid is None and hi > 0 and (shown >= 0).all()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("clip", [50.0, 90.0, 99.5, 100.0])
def test_the_range_ends_at_the_clip_percentile_of_the_magnitude(seed, clip):
    values = random_map(seed)
    _, hi, _ = display.colour_range(values, "signed", clip)
    assert hi == pytest.approx(float(np.percentile(np.abs(values), clip)))
    assert (np.abs(values) <= hi).mean() >= clip / 100 - 1 / values.size  # percentiles interpolate


def test_a_sparse_map_falls_back_to_its_maximum_and_ignores_non_finite_values():
    values = np.zeros((10, 10), np.float32)
    values[0, 0], values[0, 1] = 3.0, np.nan
    assert display.colour_range(values, "positive", 95.0) == (0.0, 3.0, None)  # the 95th percentile is 0


@pytest.mark.parametrize("seed", SEEDS)
def test_minmax_spans_exactly_zero_to_one(seed):
    shown = display.shown_values(random_map(seed), "minmax")
    assert shown.min() == pytest.approx(0.0) and shown.max() == pytest.approx(1.0)
    assert display.colour_range(shown, "minmax", 99.5) == (0.0, 1.0, None)


def test_modes_and_options_are_validated_with_the_parameter_named():
    with pytest.raises(ValueError, match="^mode"):
        display.shown_values(np.zeros((2, 2)), "loud")
    with pytest.raises(ValueError, match="^mode"):
        display.colour_range(np.zeros((2, 2)), "loud")
    with pytest.raises(ValueError, match="^clip"):
        display.colour_range(np.zeros((2, 2)), "signed", 101.0)
    with pytest.raises(ValueError, match="^colormap"):
        display.lut("NoSuchScale")
    with pytest.raises(ValueError, match="^resample"):
        display.resize_map(np.zeros((2, 2)), (4, 4), resample="cubic")
    with pytest.raises(ValueError, match="^alpha"):
        display.overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2)), 0.0, 1.0, alpha=1.5)
    with pytest.raises(ValueError, match="^groups"):
        display.shared_ranges([(0.0, 1.0, None)], [])


def test_auto_scale_is_signed_when_any_value_is_negative():
    assert display.auto_scale(np.array([[0.2, 0.7]])) == ("Viridis", 0.0, 0.7)
    assert display.auto_scale(np.array([[-0.5, 2.0]])) == ("RdBu_r", -2.0, 2.0)
    assert display.auto_scale(np.array([[-0.5, -0.25]])) == ("RdBu_r", -0.5, 0.5)  # all negative: still signed
    assert display.auto_scale(np.array([[0.2, 0.7]]), sequential="Greys")[0] == "Greys"


@pytest.mark.parametrize("seed", SEEDS)
def test_auto_mode_is_signed_for_a_map_of_both_signs(seed):
    values = random_map(seed)
    assert display.colour_range(values, "auto", 99.0) == display.colour_range(values, "signed", 99.0)
    assert display.shown_values(values, "auto") is values  # the raw map, nothing rescaled


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_auto_mode_spans_a_one_signed_map_from_its_low_to_its_high_percentile(seed, sign):
    """RISE (probabilities around 0.6-0.7) opened as one flat colour in the signed mode: ±0.7 put every pixel
    in the top tenth of the bar. In auto mode its own range fills the bar."""
    rng = np.random.default_rng(seed)
    values = sign * (0.6 + 0.1 * rng.random((9, 13)))
    lo, hi, mid = display.colour_range(values, "auto", 99.0)
    assert mid is None
    assert lo == pytest.approx(np.percentile(values, 1.0)) and hi == pytest.approx(np.percentile(values, 99.0))
    rgb = display.to_rgb(values, lo, hi)
    assert len({tuple(c) for c in rgb.reshape(-1, 3)}) > 20  # many colours, not one wash


def test_auto_mode_starts_a_cam_at_zero():
    cam = np.zeros((10, 10))
    cam[3:6, 3:6] = 2.0
    assert display.colour_range(cam, "auto", 100.0) == (0.0, 2.0, None)


def test_shared_ranges_centre_a_group_of_signed_and_one_signed_maps():
    """auto mode: a signed gradient and a one-signed map of the same units share one range around 0."""
    assert display.shared_ranges([(-0.2, 0.2, 0.0), (0.1, 0.5, None)], ["g", "g"]) == [(-0.5, 0.5, 0.0)] * 2
    assert display.shared_ranges([(0.1, 0.5, None), (-0.2, 0.2, 0.0)], ["g", "g"]) == [(-0.5, 0.5, 0.0)] * 2


def test_shared_ranges_join_only_maps_of_the_same_group():
    ranges = [(-0.2, 0.2, 0.0), (0.0, 5.0, None), (-0.4, 0.4, 0.0), (0.0, 1.0, None)]
    shared = display.shared_ranges(ranges, ["grad", "prob", "grad", "prob"])
    assert shared == [(-0.4, 0.4, 0.0), (0.0, 5.0, None), (-0.4, 0.4, 0.0), (0.0, 5.0, None)]
    assert display.shared_ranges(ranges, range(4)) == ranges  # every map alone: unchanged


# -- colour maps --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Viridis", "RdBu_r", "inferno", "jet", "Greys", "PiYG"])
def test_lut_endpoints_match_plotly(name):
    table = display.lut(name)
    assert table.shape == (256, 3) and table.dtype == np.uint8
    ends = sample_colorscale(get_colorscale(name), [0.0, 1.0], colortype="tuple")
    np.testing.assert_array_equal(table[[0, -1]], np.round(np.array(ends) * 255))


def test_lut_is_one_cached_read_only_table():
    assert display.lut("Viridis") is display.lut("Viridis")
    with pytest.raises(ValueError):
        display.lut("Viridis")[0, 0] = 0


def test_to_rgb_clips_and_handles_an_empty_range():
    table = display.lut("inferno")
    rgb = display.to_rgb(np.array([-5.0, 0.0, 0.5, 1.0, 7.0, np.nan]), 0.0, 1.0, "inferno")
    np.testing.assert_array_equal(rgb[[0, 1, 3, 4, 5]], table[[0, 0, 255, 255, 0]])
    np.testing.assert_array_equal(rgb[2], table[128])
    assert (display.to_rgb(np.ones((2, 2)), 1.0, 1.0) == display.lut("Viridis")[0]).all()  # hi <= lo: first colour


# -- resizing -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(1, 1), (5, 3), (224, 224), (300, 451)])
@pytest.mark.parametrize("resample", display.RESAMPLING)
def test_resizing_a_constant_map_gives_the_constant(size, resample):
    out = display.resize_map(np.full((7, 12), -2.5), size, resample=resample)
    assert out.shape == size and out.dtype == np.float32
    np.testing.assert_allclose(out, -2.5, rtol=1e-6)


@pytest.mark.parametrize("size", [(1, 1), (16, 16), (200, 120)])
def test_resizing_a_constant_image_gives_the_constant(size):
    out = display.resize_image(np.full((32, 40, 3), (10, 200, 77), np.uint8), size)
    assert out.shape == (*size, 3) and (out == (10, 200, 77)).all()


def test_images_are_enlarged_nearest_and_shrunk_bilinear():
    image = np.array([[0, 255], [255, 0]], np.uint8)
    big = display.resize_image(image, (8, 8))
    assert set(np.unique(big).tolist()) == {0, 255}  # no blended values: crisp pixels
    small = display.resize_image(np.kron(image, np.ones((8, 8), np.uint8)), (3, 3))
    assert 0 < small[1, 1] < 255  # averaged


def test_display_size_keeps_the_aspect_ratio():
    assert display.display_size((300, 451), 160) == (106, 160)
    assert display.display_size((32, 32), 256) == (256, 256)
    assert display.display_size((32, 32), 224, enlarge=False) == (32, 32)


# -- overlay ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_overlay_with_alpha_zero_is_the_image(seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = display.overlay(image, random_map(seed, (7, 11)), -1.0, 1.0, "RdBu_r", alpha=0.0)
    np.testing.assert_array_equal(out, image)


def test_overlay_with_alpha_one_is_the_colours_of_the_resized_map():
    image = np.zeros((6, 8, 3), np.uint8)
    values = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    out = display.overlay(image, values, 0.0, 1.0, "Viridis", alpha=1.0)
    expected = display.to_rgb(display.resize_map(values, (6, 8)), 0.0, 1.0, "Viridis")
    np.testing.assert_array_equal(out, expected)


def test_a_faded_overlay_leaves_low_values_as_the_image():
    """Attention overlays tinted the whole image with the colour map's low end; faded, a value at the neutral
    end keeps the image and the colour's weight grows with the value."""
    image = np.full((2, 3, 3), 200, np.uint8)
    values = np.array([[0.0, 0.5, 1.0], [0.0, 0.0, 0.0]])
    out = display.overlay(image, values, 0.0, 1.0, "Viridis", alpha=0.8, fade=True)
    np.testing.assert_array_equal(out[1], image[1])
    np.testing.assert_array_equal(out[0, 0], image[0, 0])
    top = display.lut("Viridis")[-1]
    np.testing.assert_array_equal(out[0, 2], np.round(0.8 * top + 0.2 * 200).astype(np.uint8))
    signed = display.overlay(image, np.array([[-1.0, 0.0, 1.0]] * 2), -1.0, 1.0, "RdBu_r", alpha=1.0, fade=True)
    np.testing.assert_array_equal(signed[:, 1], image[:, 1])  # zero is neutral in a centred range
    assert (signed[:, 0] != 200).any() and (signed[:, 2] != 200).any()


@pytest.mark.parametrize("centred", [False, True])
def test_a_faded_colour_scale_is_transparent_at_its_neutral_end(centred):
    scale = display.faded_colorscale("Viridis", centred=centred, opacity=0.7)
    alphas = [float(c.rsplit(",", 1)[1].rstrip(")")) for _, c in scale]
    assert scale[0][0] == 0.0 and scale[-1][0] == 1.0
    assert alphas[-1] == pytest.approx(0.7)
    neutral = len(scale) // 2 if centred else 0
    assert alphas[neutral] == 0.0 and max(alphas) == pytest.approx(0.7)
    assert alphas[0] == (pytest.approx(0.7) if centred else 0.0)


# -- the display choices every page offers ------------------------------------------------------------
def test_every_value_mode_has_one_label_and_every_offered_colour_map_is_known():
    assert tuple(display.MODE_LABELS) == display.MODES
    assert len(set(display.MODE_LABELS.values())) == len(display.MODES)
    assert display.COLOUR_MAPS == display.SEQUENTIAL_MAPS + display.DIVERGING_MAPS
    assert len({name.lower() for name in display.COLOUR_MAPS}) == len(display.COLOUR_MAPS)
    for name in display.COLOUR_MAPS:
        assert display.lut(name).shape == (256, 3)
    assert (display.DIVERGING_MAPS[0], display.SEQUENTIAL_MAPS[0]) == (display.DIVERGING, display.SEQUENTIAL)


@pytest.mark.parametrize("mode", display.MODES)
def test_colour_maps_are_diverging_exactly_for_the_signed_modes(mode):
    expected = display.DIVERGING_MAPS if mode in display.SIGNED_MODES else display.SEQUENTIAL_MAPS
    assert display.colour_maps(mode) == expected


def test_colour_maps_of_an_unknown_mode_name_the_known_ones():
    with pytest.raises(ValueError, match="mode: unknown 'loud'; known: auto"):
        display.colour_maps("loud")


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_a_data_uri_decodes_to_the_image(fmt):
    import base64
    import io

    from PIL import Image

    image = np.zeros((8, 12, 3), np.uint8)
    image[:, 6:] = (200, 40, 90)
    uri = display.data_uri(image, fmt=fmt)
    head, payload = uri.split(",", 1)
    assert head == f"data:image/{fmt};base64"
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB"))
    if fmt == "png":  # lossless
        np.testing.assert_array_equal(decoded, image)
    else:
        assert decoded.shape == image.shape and np.abs(decoded.astype(int) - image).max() < 40
    with pytest.raises(ValueError, match="fmt: unknown 'gif'"):
        display.data_uri(image, fmt="gif")
