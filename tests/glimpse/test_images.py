"""Image loading: every kind of bad or unusual input from the foundation issue, built here with PIL."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from glimpse.images import MAX_PIXELS, ImageLoadError, load_image, sample_images, to_rgb


def encode(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def gradient_rgb(h: int = 12, w: int = 16) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 15, y * 20, (x + y) * 7], axis=-1).astype(np.uint8)


def assert_rgb(arr: np.ndarray, shape: tuple[int, int]) -> None:
    assert arr.dtype == np.uint8 and arr.shape == (*shape, 3) and arr.flags["C_CONTIGUOUS"]


# -- refused inputs -------------------------------------------------------------------------------


def test_empty_bytes():
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(b"")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty.png is empty"):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.jpg")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated(fmt):
    data = encode(Image.fromarray(gradient_rgb(64, 64)), fmt)
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


@pytest.mark.parametrize("data", [b"hello, not an image", b"%PDF-1.4\n%...", bytes(range(256)) * 4])
def test_not_an_image(data):
    with pytest.raises(ImageLoadError, match="not an image format"):
        load_image(data)


def test_decompression_bomb_is_refused_with_the_limit():
    # A 3000×3000 PNG of zeros is a few kB but 9 MP: above a 1 MP limit.
    data = encode(Image.new("L", (3000, 3000)))
    assert len(data) < 100_000
    with pytest.raises(ImageLoadError, match=r"3000×3000 = 9,000,000 pixels, above the limit of 1,000,000"):
        load_image(data, max_pixels=1_000_000)


def test_default_limit_is_stated():
    assert MAX_PIXELS == 50_000_000
    data = encode(Image.new("1", (8000, 7000)))  # 56 MP, 1-bit: small to build
    with pytest.raises(ImageLoadError, match="above the limit of 50,000,000"):
        load_image(data)


def test_error_is_a_value_error():
    assert issubclass(ImageLoadError, ValueError)


# -- converted inputs -----------------------------------------------------------------------------


def test_plain_rgb_round_trips_exactly():
    rgb = gradient_rgb()
    np.testing.assert_array_equal(load_image(encode(Image.fromarray(rgb))), rgb)


def test_path_and_bytes_agree(tmp_path):
    rgb = gradient_rgb()
    path = tmp_path / "x.png"
    path.write_bytes(encode(Image.fromarray(rgb)))
    np.testing.assert_array_equal(load_image(path), load_image(str(path)))


def test_16_bit_greyscale_scales_by_its_range():
    grey16 = np.array([[0, 32768, 65535]], dtype=np.uint16)
    img = Image.fromarray(grey16)
    assert img.mode.startswith("I;16")
    out = load_image(encode(img))
    assert_rgb(out, (1, 3))
    np.testing.assert_array_equal(out[..., 0], [[0, 128, 255]])
    assert np.all(out[..., 0] == out[..., 1]) and np.all(out[..., 1] == out[..., 2])


def test_palette_with_transparency_composites_on_white():
    img = Image.new("P", (4, 2))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((0, 0), 1)  # blue
    out = load_image(encode(img, transparency=0))  # index 0 (red) is transparent
    assert_rgb(out, (2, 4))
    assert tuple(out[0, 0]) == (0, 0, 255)
    assert tuple(out[1, 3]) == (255, 255, 255)


def test_palette_without_transparency():
    img = Image.fromarray(gradient_rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    out = load_image(encode(img))
    assert_rgb(out, (12, 16))
    np.testing.assert_array_equal(out, np.asarray(img.convert("RGB")))


def test_rgba_composites_on_white():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (0, 0, 0, 0)  # fully transparent
    rgba[1, 0] = (0, 0, 0, 128)  # half black
    out = load_image(encode(Image.fromarray(rgba, "RGBA")))
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[0, 1]) == (255, 255, 255)
    assert all(abs(int(v) - 127) <= 1 for v in out[1, 0])


def test_la_composites_on_white():
    la = Image.new("LA", (2, 1))
    la.putpixel((0, 0), (0, 255))
    la.putpixel((1, 0), (0, 0))
    out = load_image(encode(la))
    assert tuple(out[0, 0]) == (0, 0, 0) and tuple(out[0, 1]) == (255, 255, 255)


def test_cmyk_jpeg():
    img = Image.new("CMYK", (8, 6), (0, 255, 255, 0))  # pure red in CMYK
    out = load_image(encode(img, "JPEG", quality=95))
    assert_rgb(out, (6, 8))
    r, g, b = (int(v) for v in out[3, 4])
    assert r > 200 and g < 60 and b < 60


def test_greyscale():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = load_image(encode(Image.fromarray(grey)))
    assert_rgb(out, (3, 4))
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


def test_one_bit():
    out = load_image(encode(Image.new("1", (5, 3), 1)))
    assert_rgb(out, (3, 5)) and np.all(out == 255)


def test_animated_gif_gives_the_first_frame():
    frames = [Image.new("RGB", (6, 4), colour) for colour in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    out = load_image(data)
    assert_rgb(out, (4, 6))
    r, g, b = (int(v) for v in out[2, 3])
    assert r > 200 and g < 50 and b < 50


def test_exif_orientation_is_honoured():
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)  # stored landscape: 6 wide, 4 tall
    rgb[0, 0] = (255, 0, 0)  # stored top-left pixel is red
    img = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = load_image(encode(img, "PNG", exif=exif))
    assert_rgb(out, (6, 4))  # displayed portrait
    assert tuple(out[0, -1]) == (255, 0, 0)  # top-left went to the top-right


def test_float_mode_image_is_scaled_by_its_maximum():
    img = Image.fromarray(np.array([[0.0, 0.5, 2.0]], dtype=np.float32), mode="F")
    np.testing.assert_array_equal(to_rgb(img)[0, :, 0], [0, 64, 255])


def test_sample_images_are_rgb():
    samples = sample_images()
    assert {"chelsea", "coffee", "astronaut", "camera"} <= set(samples)
    for name, arr in samples.items():
        assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3, name
