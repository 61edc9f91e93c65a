"""Reading images from bytes or paths into uint8 RGB arrays, with clear errors for bad input."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Refuse images above this many pixels (decompression-bomb guard): 50 megapixels.
MAX_PIXELS = 50_000_000
#: File name endings read as images, everywhere a folder, a zip or an upload is searched for images (ordered:
#: an uploader lists them in this order).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


class ImageLoadError(ValueError):
    """The input is not an image we can read; the message says why."""


def load_image(
    source: bytes | str | os.PathLike, *, max_pixels: int = MAX_PIXELS, name: str | None = None
) -> np.ndarray:
    """Decode an image into a uint8 RGB array of shape (H, W, 3).

    Handles 16-bit, palette, RGBA/LA (composited on white), CMYK, greyscale, animated images (first
    frame) and EXIF orientation.

    Raises
    ------
    ImageLoadError
        Empty, truncated or non-image data, or more than ``max_pixels`` pixels.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageLoadError(f"image: no such file {str(path)!r}")
        data = path.read_bytes()
        name = name or path.name
    else:
        data = bytes(source)
        name = name or "upload"
    if not data:
        raise ImageLoadError(f"image: {name} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise ImageLoadError(
                    f"image: {name} has {w}×{h} = {w * h:,} pixels, above the limit of {max_pixels:,}; "
                    "downscale it first"
                )
            img.seek(0)  # animated GIF/WebP/APNG: first frame
            img.load()
            img = ImageOps.exif_transpose(img)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageLoadError(f"image: {name} is too large to decode safely ({err})") from err
    except UnidentifiedImageError as err:
        raise ImageLoadError(f"image: {name} is not an image format Pillow can read") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageLoadError(f"image: {name} is truncated or corrupt ({err})") from err
    return to_rgb(img)


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 (H, W, 3) or (H, W) image as lossless PNG bytes: :func:`load_image` gives the same pixels back.

    The writer for files whose pixels are a claim about a model (a traversal's end point, a visualisation):
    no resize, no lossy compression.

    >>> pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    >>> bool(np.array_equal(load_image(png_bytes(pixels)), pixels))
    True
    """
    buf = io.BytesIO()
    Image.fromarray(as_rgb(image)).save(buf, format="PNG")
    return buf.getvalue()


def to_rgb(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 RGB (H, W, 3); alpha composited on white, 16-bit scaled by its range."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        if img.mode == "F":
            top = max(float(arr.max()), 1.0) if arr.max() > 1.0 else 1.0
        grey = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(arr)


def as_rgb(image: np.ndarray, *, name: str = "image", min_side: int = 1, why: str = "") -> np.ndarray:
    """Validate an 8-bit image array and return it as C-contiguous uint8 (H, W, 3): greyscale (H, W) is repeated
    to 3 channels and an alpha channel dropped. ValueError naming ``name`` otherwise, or when a side is below
    ``min_side`` (``why`` says what needs it)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"{name}: expected uint8 pixels (0-255), got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"{name}: expected shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    arr = arr[..., :3]
    h, w = arr.shape[:2]
    if min(h, w) < min_side:
        raise ValueError(f"{name}: needs at least {min_side}x{min_side} pixels{why}, got {w}x{h}")
    return np.ascontiguousarray(arr)


def sample_images() -> dict[str, np.ndarray]:
    """scikit-image's bundled sample photographs, by name, as uint8 RGB."""
    from skimage import data

    names = ("chelsea", "coffee", "astronaut", "rocket", "cat", "camera")
    out = {}
    for name in names:
        arr = getattr(data, name)()
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        out[name] = np.ascontiguousarray(arr[..., :3].astype(np.uint8))
    return out


def sample_crops(*, per_image: int = 12, seed: int = 0) -> list[np.ndarray]:
    """Square crops of the shipped sample photographs (sides 45–100 % of the short side) and their mirrors."""
    rng = np.random.default_rng(seed)
    out = []
    for img in sample_images().values():
        h, w = img.shape[:2]
        out.append(img)
        for _ in range(per_image):
            side = int(rng.uniform(0.45, 1.0) * min(h, w))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = np.ascontiguousarray(img[y : y + side, x : x + side])
            out.append(crop if rng.random() < 0.5 else np.ascontiguousarray(crop[:, ::-1]))
    return out
