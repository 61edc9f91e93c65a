"""Downloads of cross-attention results: the maps as NPZ, the per-timestep scrubber as an animated GIF.

The NPZ holds only numeric and unicode arrays, so ``np.load(f, allow_pickle=False)`` reads it; the
metadata (prompt, model, seed, the slice the maps were aggregated over, ...) is one JSON string under
``"meta"``. :func:`load_attention_npz` returns the arrays with ``meta`` already parsed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from glimpse.attention.trace import AttentionTrace
from glimpse.display import overlay, resize_image, resize_map, shown_values, to_rgb
from glimpse.npzfile import NpzError, meta_of, read_arrays, write

#: The attention NPZ (``meta.format``), written by the page and ``python -m glimpse attention`` alike.
FORMAT = "glimpse-attention"
VERSION = 1

NORMALISATIONS: tuple[str, ...] = ("frame", "shared")


def _meta_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, slice):
        return [obj.start, obj.stop]
    raise TypeError(f"meta: {type(obj).__name__} is not JSON-serialisable")


def attention_npz_bytes(
    trace: AttentionTrace,
    maps: np.ndarray,
    *,
    image: np.ndarray | None = None,
    slices: Mapping[str, Any] | None = None,
    mass: np.ndarray | None = None,
    token_maps: np.ndarray | None = None,
    frames: np.ndarray | None = None,
) -> bytes:
    """Serialise a cross-attention result to NPZ bytes (readable with ``allow_pickle=False``).

    Parameters
    ----------
    trace : glimpse.attention.AttentionTrace
        Source of the tokens, words, timesteps, layers and generation metadata.
    maps : ndarray, shape (len(words), H, W)
        Word maps (raw, not normalised) aggregated over ``slices``.
    image : ndarray of uint8, shape (H', W', 3), optional
        The generated image.
    slices : mapping, optional
        How ``maps`` were aggregated (timestep range, layers, resolutions, heads); stored in ``meta``.
    mass : ndarray, shape (len(words), T), optional
        Attention mass of each word per timestep.
    token_maps : ndarray, shape (len(tokens), H, W), optional
    frames : ndarray, shape (T, H, W), optional
        Per-timestep maps of one word (the scrubber).

    Returns
    -------
    bytes
        Keys: ``words``, ``tokens``, ``maps`` (float32), ``timesteps``, ``layers``, ``resolutions``,
        ``word_token_index`` / ``word_token_offsets`` (word k's tokens are
        ``index[offsets[k]:offsets[k + 1]]``), ``meta`` (JSON), and the optional arrays given.
    """
    words = tuple(trace.words)
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3 or len(maps) != len(words):
        raise ValueError(f"maps: expected shape ({len(words)}, H, W) for {len(words)} words, got {maps.shape}")
    offsets = np.cumsum([0, *(len(t) for t in trace.word_tokens)]).astype(np.int64)
    flat = [i for toks in trace.word_tokens for i in toks]
    meta = {
        "format": FORMAT,
        "version": VERSION,
        **trace.meta(),
        "aggregation": "DAAM: sum over timesteps per (layer, head), bicubic upsampling to the grid, clamp >= 0, "
        "mean over layers and heads, bicubic to the output size; word = mean of its sub-tokens",
        "slices": dict(slices or {}),
    }
    arrays: dict[str, np.ndarray] = {
        "words": np.array(words, dtype=str),
        "tokens": np.array(tuple(trace.tokens), dtype=str),
        "maps": maps,
        "timesteps": np.asarray(trace.timesteps, dtype=np.int64),
        "layers": np.array(tuple(trace.layers), dtype=str),
        "resolutions": np.asarray(trace.resolutions(), dtype=np.int64),
        "word_token_index": np.asarray(flat, dtype=np.int64),
        "word_token_offsets": offsets,
    }
    optional = {"image": image, "mass": mass, "token_maps": token_maps, "frames": frames}
    for name, value in optional.items():
        if value is not None:
            arrays[name] = np.asarray(value, dtype=np.uint8 if name == "image" else np.float32)
    return write(arrays, json.loads(json.dumps(meta, default=_meta_default)))


def load_attention_npz(source: str | bytes | io.IOBase) -> dict[str, Any]:
    """Read an NPZ written by :func:`attention_npz_bytes` (untrusted: :func:`glimpse.npzfile.read`'s checks);
    ``meta`` comes back as a dict. Files from before the format was named (no ``meta.format``) are read too."""
    arrays = read_arrays(source, what=FORMAT)
    meta = meta_of(arrays, what=FORMAT) or {}
    if meta.get("format", FORMAT) != FORMAT or meta.get("version", VERSION) != VERSION:
        raise NpzError(
            f"{FORMAT}: meta says {meta.get('format')!r} version {meta.get('version')!r}; expected {FORMAT!r} 1"
        )
    out: dict[str, Any] = dict(arrays)
    out["meta"] = meta
    return out


def scrubber_gif(
    frames: np.ndarray,
    *,
    image: np.ndarray | None = None,
    labels: Sequence[str] | None = None,
    size: int = 160,
    normalise: str = "frame",
    opacity: float = 0.6,
    duration_ms: int = 250,
) -> bytes:
    """An animated GIF of per-timestep maps (the scrubber), optionally blended over the image.

    Parameters
    ----------
    frames : ndarray, shape (T, H, W)
        One raw map per timestep.
    image : ndarray of uint8, shape (H', W', 3), optional
        Background; enlarged to ``size`` with nearest-neighbour so small generated images stay crisp.
    labels : sequence of str, length T, optional
        Caption drawn on each frame (e.g. ``"t=999"``).
    size : int
        Side of the square frames in pixels; keep it small, the GIF is a download.
    normalise : {"frame", "shared"}
        Colour scale per frame (shows where the word looks at each step) or shared over all frames
        (also shows how much it looks).
    opacity : float in [0, 1]
        Weight of the heatmap over the image.
    duration_ms : int
        Display time of each frame.

    Returns
    -------
    bytes
        GIF with T frames, looping forever.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3 or len(frames) == 0:
        raise ValueError(f"frames: expected shape (T, H, W) with T >= 1, got {frames.shape}")
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise: unknown {normalise!r}; known: {', '.join(NORMALISATIONS)}")
    if labels is not None and len(labels) != len(frames):
        raise ValueError(f"labels: {len(labels)} labels for {len(frames)} frames")
    if not 8 <= int(size) <= 1024:
        raise ValueError(f"size: {size} is outside 8..1024")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity: {opacity} is outside [0, 1]")
    size = int(size)
    # nearest when enlarging (glimpse.display's "auto"): a 32x32 image or map stays honest pixels and the GIF
    # palette stays small
    background = None if image is None else resize_image(np.asarray(image, dtype=np.uint8), (size, size))
    if normalise == "shared":
        scaled = shown_values(frames, "minmax")
    else:
        scaled = np.stack([shown_values(frame, "minmax") for frame in frames])
    pictures = []
    for k, frame in enumerate(scaled):
        up = resize_map(frame, (size, size), resample="auto")
        rgb = to_rgb(up, 0.0, 1.0) if background is None else overlay(background, up, 0.0, 1.0, alpha=opacity)
        picture = Image.fromarray(rgb)
        if labels is not None:
            draw = ImageDraw.Draw(picture)
            draw.rectangle((0, 0, size, 12), fill=(0, 0, 0))
            draw.text((3, 1), str(labels[k]), fill=(255, 255, 255))
        # one palette per frame (the colour scale changes between frames); octree quantisation is fast
        pictures.append(picture.quantize(colors=255, method=Image.Quantize.FASTOCTREE))
    buf = io.BytesIO()
    pictures[0].save(
        buf, format="GIF", save_all=True, append_images=pictures[1:], duration=int(duration_ms), loop=0, disposal=1
    )
    return buf.getvalue()
