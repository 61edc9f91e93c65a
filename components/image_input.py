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


@dataclass(frozen=True, eq=False)
class ImageChoice:
    name: str
    pixels: np.ndarray  # uint8 (H, W, 3)
    digest: str  # sha1 of the pixels: a plain cache key

    @property
    def key(self) -> str:
        return f"{self.name}:{self.digest}"


#: How every cached service keys work on an image: it takes the picked :class:`ImageChoice` itself and
#: Streamlit hashes it by its digest (``@st.cache_data(hash_funcs=BY_DIGEST)``), not by its pixels again.
BY_DIGEST = {ImageChoice: lambda image: image.digest}


@st.cache_data(max_entries=1, show_spinner=False)
def _samples() -> dict[str, np.ndarray]:
    from glimpse.evaluation.blockdigits import sample_images as blockdigits_samples

    return {**sample_images(), **blockdigits_samples()}


def _choice(name: str, pixels: np.ndarray) -> ImageChoice:
    return ImageChoice(name=name, pixels=pixels, digest=hashlib.sha1(pixels.tobytes()).hexdigest()[:16])


#: An image whose shorter side is below this fraction of the model's input side is "far too small".
TOO_SMALL = 0.25


def size_warning(image: ImageChoice, input_size: tuple[int, int]) -> None:
    """Warn when the image is far smaller than what the model takes: it is upscaled into a blur, so the
    predictions and maps say little about it (a 1×1 upload was classified as "velvet" without a word)."""
    h, w = image.pixels.shape[:2]
    ih, iw = input_size
    if min(h / ih, w / iw) < TOO_SMALL:
        st.warning(
            f"This image is {w}×{h} pixels, far below the model's input of {iw}×{ih}: it is enlarged into a blur "
            "before the model sees it, so its predictions and maps say little. Use a larger image."
        )


def image_picker(*, key: str = "image", show: bool = True) -> ImageChoice | None:
    """Upload or sample picker; returns the current image (kept across pages) or None."""
    samples = _samples()
    source = st.radio("Image", ["Sample", "Upload"], horizontal=True, key=f"{key}_source")
    if source == "Upload":
        up = st.file_uploader(
            f"Upload an image (PNG, JPEG, WebP, TIFF, GIF…; at most {MAX_PIXELS / 1e6:.0f} megapixels)",
            key=f"{key}_upload",
        )
        if up is not None:
            try:
                pixels = load_image(up.getvalue(), max_pixels=MAX_PIXELS)
            except ImageLoadError as err:
                st.error(f"{err}. Try another file; the previous image is kept.")
            else:
                st.session_state[IMAGE_KEY] = _choice(up.name, pixels)
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
            st.session_state[IMAGE_KEY] = _choice(name, samples[name])
    chosen = st.session_state.get(IMAGE_KEY)
    if chosen is not None and show:
        h, w = chosen.pixels.shape[:2]
        st.image(chosen.pixels, caption=f"{chosen.name} · {w}×{h}", width=260)
    return chosen
