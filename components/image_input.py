"""The image picker shared by every page: upload, or a sample (scikit-image's photographs, BlockDigits images).

The chosen image lives in st.session_state so every page works on the same picture.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st

from glimpse.images import MAX_PIXELS, ImageLoadError, load_image, sample_images

IMAGE_KEY = "glimpse_image"
#: server.maxUploadSize in .streamlit/config.toml (MB per file): an uncompressed 8-bit RGB image of MAX_PIXELS
#: fits, so the pixel limit, not the file size, is what refuses an image.
UPLOAD_MB = 150
#: What every image uploader says about its limits (Streamlit's own line under it says "Limit 150MB per file").
IMAGE_LIMITS = f"at most {MAX_PIXELS / 1e6:.0f} megapixels and {UPLOAD_MB} MB per file"


def digest(data: bytes | np.ndarray) -> str:
    """The one cache key of an image: the first 16 hex digits of the sha1 of its pixels (C order) or of a file's
    bytes. Every picked image, upload and pool of images is keyed by it.

    >>> digest(b"abc") == digest(np.frombuffer(b"abc", np.uint8)), len(digest(b""))
    (True, 16)
    """
    raw = data if isinstance(data, bytes) else np.ascontiguousarray(data).tobytes()
    return hashlib.sha1(raw).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class ImageChoice:
    name: str
    pixels: np.ndarray  # uint8 (H, W, 3)
    digest: str  # digest(pixels): a plain cache key

    @property
    def key(self) -> str:
        return f"{self.name}:{self.digest}"


def image_choice(name: str, pixels: np.ndarray) -> ImageChoice:
    """``pixels`` as a picked image, keyed by :func:`digest`."""
    return ImageChoice(name=name, pixels=pixels, digest=digest(pixels))


#: How every cached service keys work on an image: it takes the picked :class:`ImageChoice` itself and
#: Streamlit hashes it by its digest (``@st.cache_data(hash_funcs=BY_DIGEST)``), not by its pixels again.
BY_DIGEST = {ImageChoice: lambda image: image.digest}


@st.cache_data(max_entries=1, show_spinner=False)
def _samples() -> dict[str, np.ndarray]:
    from glimpse.evaluation.blockdigits import sample_images as blockdigits_samples

    return {**sample_images(), **blockdigits_samples()}


#: An image side below this fraction of the model's input side is "far too small": it is enlarged into a blur.
TOO_SMALL = 0.25
#: An aspect ratio more than this many times the model's is squashed out of shape by the resize.
TOO_STRETCHED = 3.0


def _times(factor: float) -> str:
    return f"{factor:.1f}×" if factor < 10 else f"{factor:.0f}×"


def size_problem(shape: tuple[int, ...], input_size: tuple[int, int]) -> str | None:
    """What the model's resize does to an image of ``shape`` (H, W, ...) when that makes its predictions and maps
    say little, or None. The classifiers stretch every image to ``input_size`` (H, W) whatever its aspect ratio
    (``ClassifierBundle.preprocess``): a side far below the input is enlarged into a blur, and an aspect ratio far
    from the input's is squashed. A 6000×40 strip was called "far below the model's input" although one side is
    27 times above it: each side is described as what happens to it."""
    h, w = int(shape[0]), int(shape[1])
    ih, iw = input_size
    fx, fy = iw / w, ih / h  # > 1: that side is enlarged
    blurred = max(fx, fy) > 1 / TOO_SMALL
    squashed = max(fx / fy, fy / fx) > TOO_STRETCHED
    if not (blurred or squashed):
        return None
    size = f"This image is {w}×{h} pixels"
    if not squashed:  # both sides enlarged (the larger factor is over 4, the smaller over 4/3)
        lo, hi = sorted((fx, fy))
        by = _times(lo) if hi / lo < 1.05 else f"{_times(lo)}–{_times(hi)}"
        return (
            f"{size}, far below the model's input of {iw}×{ih}: it is enlarged {by} into a blur before the model "
            "sees it, so its predictions and maps say little. Use a larger image."
        )

    def side(name: str, f: float) -> str:
        return f"its {name} enlarged {_times(f)}" if f > 1 else f"its {name} shrunk {_times(1 / f)}"

    ratio = f"{max(w, h) / min(w, h):.3g}:1"
    blur = ", and blurred along the enlarged side," if blurred else ""
    return (
        f"{size} ({'wide' if w > h else 'tall'}, {ratio}); the model takes {iw}×{ih}, so it is stretched to that: "
        f"{side('width', fx)} and {side('height', fy)}. The picture is squashed out of shape{blur} before the model "
        "sees it, so its predictions and maps say little. Crop it closer to the model's shape, or use a larger image."
    )


def size_warning(image: ImageChoice, input_size: tuple[int, int]) -> None:
    """Warn when the model's resize makes the image say little (:func:`size_problem`): a 1×1 upload was
    classified as "velvet" without a word."""
    problem = size_problem(image.pixels.shape, input_size)
    if problem is not None:
        st.warning(problem)


def image_picker(*, key: str = "image", show: bool = True) -> ImageChoice | None:
    """Upload or sample picker; returns the current image (kept across pages) or None."""
    samples = _samples()
    source = st.radio("Image", ["Sample", "Upload"], horizontal=True, key=f"{key}_source")
    if source == "Upload":
        up = st.file_uploader(
            f"Upload an image (PNG, JPEG, WebP, TIFF, GIF…; {IMAGE_LIMITS})",
            key=f"{key}_upload",
        )
        if up is not None:
            try:
                pixels = load_image(up.getvalue(), max_pixels=MAX_PIXELS)
            except ImageLoadError as err:
                st.error(f"{err}. Try another file; the previous image is kept.")
            else:
                st.session_state[IMAGE_KEY] = image_choice(up.name, pixels)
    else:
        names = list(samples)
        current = st.session_state.get(IMAGE_KEY)
        default = names.index(current.name) if current is not None and current.name in names else 0
        name = st.selectbox(
            "Sample image",
            names,
            index=default,
            key=f"{key}_sample",
            help="Photographs from scikit-image (for ImageNet classifiers) and BlockDigits test images (for the "
            "blockdigits classifiers: a digit and a fixed null patch, stacked).",
        )
        if current is None or current.name != name:
            st.session_state[IMAGE_KEY] = image_choice(name, samples[name])
    chosen = st.session_state.get(IMAGE_KEY)
    if chosen is not None and show:
        h, w = chosen.pixels.shape[:2]
        st.image(chosen.pixels, caption=f"{chosen.name} · {w}×{h}", width=260)
    return chosen
