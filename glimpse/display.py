"""How every view shows a map: value modes, colour ranges, colour maps, resizing and overlays.

Maps are kept raw and signed (house rule 3); everything here is a display option applied to a copy. Every
page, the run bundle's overlays and report, and the attention GIF draw through these functions, so a map
gets the same colours wherever it is shown:

* a **value mode** (:data:`MODES`) turns the raw map into the values shown: ``auto`` (the raw map, its range
  chosen per map), signed, ``|value|``, the positive part, or min–max scaled per map to [0, 1];
* a **colour range** (:func:`colour_range`) is symmetric around 0 for signed values and starts at 0 otherwise,
  its end at a percentile ``clip`` of the magnitude; in ``auto`` mode a map with both signs gets the signed
  range and a one-signed map (RISE, Score-CAM, the CAMs) runs from its low to its high percentile, so its
  structure shows instead of one flat colour; :func:`auto_scale` is the rule of the run report (signed if any
  value is negative); :func:`shared_ranges` widens ranges to one per group of comparable maps;
* a **colour map** is a 256-entry RGB table of a plotly colour scale (:func:`lut`), applied by :func:`to_rgb`;
  every page offers the same ones (:data:`COLOUR_MAPS`; by value mode :func:`colour_maps`) and names the value
  modes alike (:data:`MODE_LABELS`);
* **resizing** is bilinear for maps (:func:`resize_map`) and for shrinking images, nearest neighbour when
  enlarging an image (:func:`resize_image`), so a 32×32 generated image stays crisp;
* :func:`overlay` blends a coloured map over an image; with ``fade`` a value's colour is as opaque as the value is
  far from the neutral end of the range (:func:`fade_weights`), so low attention leaves the image visible;
  :func:`faded_colorscale` is the same rule as a plotly colour scale for the pages' heatmaps.

Framework-free: numpy, Pillow and ``plotly.colors`` (no Streamlit, no figures).
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence

import numpy as np
from PIL import Image

#: Value modes: what a map shows (the raw map is kept elsewhere).
MODE_TITLES = {
    "auto": "raw value",
    "signed": "raw value",
    "absolute": "|value|",
    "positive": "max(value, 0)",
    "minmax": "(value − min) / (max − min)",
}
MODES: tuple[str, ...] = tuple(MODE_TITLES)
#: The value modes' names on every page's control (``st.radio(..., MODES, format_func=MODE_LABELS.get)``).
MODE_LABELS = {"auto": "auto", "signed": "signed", "absolute": "|value|", "positive": "positive", "minmax": "min–max"}
#: Modes drawn with a diverging colour map centred at zero; the others are magnitudes, except ``auto``, which is
#: diverging for a map with both signs and sequential for a one-signed map (its range's ``mid`` says which).
SIGNED_MODES: tuple[str, ...] = ("signed",)
#: Colour maps of :func:`auto_scale`: signed maps diverge from white at 0 (blue below, red above); unsigned ones
#: (|gradient|, probabilities, counts, attention) run from dark at 0 to bright at their maximum.
DIVERGING, SEQUENTIAL = "RdBu_r", "Viridis"
#: The colour maps every page offers (plotly's names, each list's first is its default): diverging maps for
#: signed values, white at 0, and sequential maps for magnitudes (:func:`colour_maps` picks by value mode).
DIVERGING_MAPS: tuple[str, ...] = (DIVERGING, "PiYG", "PuOr_r", "BrBG")
SEQUENTIAL_MAPS: tuple[str, ...] = (SEQUENTIAL, "Inferno", "Magma", "Jet", "Hot", "Greys")
COLOUR_MAPS: tuple[str, ...] = SEQUENTIAL_MAPS + DIVERGING_MAPS
#: Resampling choices of :func:`resize_map`; ``"auto"`` is nearest neighbour when enlarging, else bilinear.
RESAMPLING: tuple[str, ...] = ("bilinear", "nearest", "auto")
#: End of the colour bar of a map with no magnitude (all zeros): a positive span, so a colour bar can be drawn.
TINY = 1e-12

#: (low, high, mid) of a colour bar; ``mid`` is 0.0 for a diverging bar centred at zero, else None.
Range = tuple[float, float, float | None]


# ------------------------------------------------------------------------------------------ value modes
def shown_values(values: np.ndarray, mode: str) -> np.ndarray:
    """The map as displayed in one of the :data:`MODES`.

    Parameters
    ----------
    values : ndarray, shape (H, W)
        The raw map.
    mode : {"auto", "signed", "absolute", "positive", "minmax"}
        ``auto`` and ``signed``: unchanged (they differ in their colour range); ``absolute``: ``|v|``; ``positive``: ``max(v, 0)``; ``minmax``:
        ``(v − min) / (max − min)`` per map, for maps whose values sit in a narrow band away from zero
        (RISE: probabilities around 0.6–0.7), which a range from zero draws as one flat colour.
        A constant map shows as zeros in ``minmax``.

    Returns
    -------
    ndarray, shape (H, W)

    Raises
    ------
    ValueError
        ``mode`` is not one of :data:`MODES`.

    Examples
    --------
    >>> v = np.array([[-2.0, 0.0], [1.0, 2.0]])
    >>> shown_values(v, "positive").tolist()
    [[0.0, 0.0], [1.0, 2.0]]
    >>> shown_values(v, "minmax").tolist()
    [[0.0, 0.5], [0.75, 1.0]]
    """
    if mode in ("auto", "signed"):
        return values
    if mode == "absolute":
        return np.abs(values)
    if mode == "positive":
        return np.clip(values, 0.0, None)
    if mode == "minmax":
        finite = _finite(values)
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if not hi > lo:
            return np.zeros_like(values)
        return (values - lo) / (hi - lo)
    raise ValueError(f"mode: unknown {mode!r}; known: {', '.join(MODES)}")


def auto_mode(values: np.ndarray) -> str:
    """``"signed"`` when any finite value is negative, else ``"positive"`` (the run report's rule).

    An all-negative map is signed too: its zero is still the neutral middle colour.

    Examples
    --------
    >>> auto_mode(np.array([0.2, 0.7])), auto_mode(np.array([-0.5, -0.25]))
    ('positive', 'signed')
    """
    finite = _finite(values)
    return "signed" if finite.size and float(finite.min()) < 0 else "positive"


def colour_maps(mode: str) -> tuple[str, ...]:
    """The colour maps that suit a value mode: :data:`DIVERGING_MAPS` for the signed mode, else
    :data:`SEQUENTIAL_MAPS` (in ``auto`` mode the chosen one draws the one-signed maps; a map with both signs is
    drawn :data:`DIVERGING`, as :func:`auto_scale` does).

    >>> colour_maps("signed")[0], colour_maps("auto")[0]
    ('RdBu_r', 'Viridis')
    """
    if mode not in MODES:
        raise ValueError(f"mode: unknown {mode!r}; known: {', '.join(MODES)}")
    return DIVERGING_MAPS if mode in SIGNED_MODES else SEQUENTIAL_MAPS


# ----------------------------------------------------------------------------------------- colour ranges
def colour_range(values: np.ndarray, mode: str, clip: float = 100.0) -> Range:
    """(low, high, mid) of the colour bar for one map's shown values.

    Symmetric around 0 for the signed mode, from 0 otherwise, [0, 1] for ``minmax``. The end is the ``clip``
    percentile of ``|values|`` (non-finite values left out), so a few extreme pixels do not wash the bar
    out; when that percentile is 0 (a sparse map) the maximum is used, and a map with no magnitude at all
    gets the tiny span :data:`TINY`.

    ``auto`` decides per map: a map with values of both signs gets the signed range; a one-signed map (all
    values ≥ 0 or all ≤ 0: RISE's probabilities around 0.6–0.7, a CAM) runs from the ``100 − clip`` to the
    ``clip`` percentile of its values, so a map far from zero is not one flat colour. A constant map falls back
    to the range from zero.

    Parameters
    ----------
    values : ndarray, shape (H, W)
        The map after :func:`shown_values` with the same ``mode``.
    mode : str
        One of :data:`MODES`.
    clip : float in [0, 100]
        Percentile of the magnitude at the end of the bar; 100 is the maximum.

    Returns
    -------
    (float, float, float or None)
        ``(-top, top, 0.0)`` for signed, ``(0.0, top, None)`` otherwise.

    Examples
    --------
    >>> colour_range(np.array([[-4.0, 1.0], [2.0, 0.5]]), "signed")
    (-4.0, 4.0, 0.0)
    >>> colour_range(np.array([[0.0, 0.0]]), "positive")
    (0.0, 1e-12, None)
    >>> colour_range(np.array([[0.6, 0.7]]), "auto"), colour_range(np.array([[-1.0, 0.5]]), "auto")
    ((0.6, 0.7, None), (-1.0, 1.0, 0.0))
    """
    if mode not in MODES:
        raise ValueError(f"mode: unknown {mode!r}; known: {', '.join(MODES)}")
    if not 0.0 <= clip <= 100.0:
        raise ValueError(f"clip: {clip} is outside [0, 100]")
    if mode == "minmax":
        return 0.0, 1.0, None
    if mode == "auto":
        return _auto_range(values, clip)
    magnitude = np.abs(_finite(values))
    top = float(np.percentile(magnitude, clip)) if magnitude.size else 0.0
    if top <= 0.0:
        top = float(magnitude.max()) if magnitude.size else 0.0
    top = top if top > 0.0 else TINY
    if mode in SIGNED_MODES:
        return -top, top, 0.0
    return 0.0, top, None


def _auto_range(values: np.ndarray, clip: float) -> Range:
    finite = _finite(values).astype(np.float64)
    if finite.size and float(finite.min()) < 0.0 < float(finite.max()):
        return colour_range(values, "signed", clip)
    lo, hi = (float(np.percentile(finite, 100.0 - clip)), float(np.percentile(finite, clip))) if finite.size else (0, 0)
    if hi > lo:
        return lo, hi, None
    # a constant (or empty) map: the range from zero, as the signed or positive mode draws it
    return colour_range(values, "signed" if finite.size and float(finite.min()) < 0 else "positive", clip)


def auto_scale(values: np.ndarray, *, sequential: str = SEQUENTIAL, clip: float = 100.0) -> tuple[str, float, float]:
    """(colour map, low, high) by the run report's rule, for a raw map.

    A map with any negative value is signed (gradients, Integrated Gradients, contrasts): :data:`DIVERGING`
    over ±max|v|, so 0 is the neutral middle colour and equal magnitudes of either sign get equally strong
    colours. Otherwise it is unsigned: ``sequential`` from 0 to its maximum, so 0 means none.

    Examples
    --------
    >>> auto_scale(np.array([[-0.5, 2.0]]))
    ('RdBu_r', -2.0, 2.0)
    >>> auto_scale(np.array([[0.2, 0.7]]))
    ('Viridis', 0.0, 0.7)
    """
    mode = auto_mode(values)
    lo, hi, _ = colour_range(values, mode, clip)
    return (DIVERGING if mode in SIGNED_MODES else sequential), lo, hi


def shared_ranges(ranges: Sequence[Range], groups: Sequence[Hashable]) -> list[Range]:
    """Each range widened to the union of the ranges of its group (maps that share a colour bar).

    Parameters
    ----------
    ranges : sequence of (low, high, mid)
        One range per map, e.g. from :func:`colour_range`.
    groups : sequence of hashable, same length
        The group of each map (e.g. its units); maps of different groups never share.

    Returns
    -------
    list of (low, high, mid)
        ``mid`` is kept where the whole group has the same one (the union of ranges symmetric around 0
        is symmetric around 0), else None; a group where some ranges are centred at 0 and others not (``auto``
        mode: signed and one-signed maps in the same units) gets the symmetric range around 0 that holds them
        all, so its signed maps keep 0 as their neutral colour.

    Examples
    --------
    >>> shared_ranges([(-0.2, 0.2, 0.0), (-0.4, 0.4, 0.0), (0.0, 9.0, None)], ["grad", "grad", "prob"])
    [(-0.4, 0.4, 0.0), (-0.4, 0.4, 0.0), (0.0, 9.0, None)]
    """
    if len(ranges) != len(groups):
        raise ValueError(f"groups: {len(groups)} groups for {len(ranges)} ranges")
    union: dict[Hashable, Range] = {}
    for (lo, hi, mid), g in zip(ranges, groups):
        if g not in union:
            union[g] = (lo, hi, mid)
            continue
        glo, ghi, gmid = union[g]
        if (gmid == 0.0) != (mid == 0.0):  # centred and uncentred ranges: centre the union
            top = max(abs(glo), abs(ghi), abs(lo), abs(hi))
            union[g] = (-top, top, 0.0)
        else:
            union[g] = (min(glo, lo), max(ghi, hi), gmid if gmid == mid else None)
    return [union[g] for g in groups]


# ------------------------------------------------------------------------------------------- colour maps
@functools.lru_cache(maxsize=32)
def lut(colormap: str) -> np.ndarray:
    """(256, 3) uint8 colours of a plotly colour scale, sampled evenly from its low to its high end.

    Computed once per name (a read-only constant). The names are plotly's: ``"Viridis"``, ``"RdBu_r"``,
    ``"inferno"``, ``"jet"``, ... (any case; ``_r`` reverses).

    Raises
    ------
    ValueError
        ``colormap`` is not a plotly colour scale.

    Examples
    --------
    >>> lut("Viridis")[[0, -1]].tolist()
    [[68, 1, 84], [253, 231, 37]]
    """
    from plotly.colors import get_colorscale, sample_colorscale
    from plotly.exceptions import PlotlyError

    try:
        scale = get_colorscale(colormap)
    except PlotlyError as err:
        raise ValueError(f"colormap: unknown {colormap!r}; known: plotly's named colour scales ({err})") from err
    colours = sample_colorscale(scale, [i / 255 for i in range(256)], colortype="tuple")
    table = np.array([[round(255 * float(c)) for c in rgb] for rgb in colours], dtype=np.uint8)
    table.setflags(write=False)
    return table


def to_rgb(values: np.ndarray, lo: float, hi: float, colormap: str = SEQUENTIAL) -> np.ndarray:
    """Colour a float array: ``lo`` and below get the colour map's first colour, ``hi`` and above its last.

    Parameters
    ----------
    values : ndarray, shape (...)
    lo, hi : float
        The colour range; when ``hi <= lo`` every value gets the first colour. Non-finite values do too.
    colormap : str
        A plotly colour scale name (see :func:`lut`).

    Returns
    -------
    ndarray of uint8, shape (..., 3)

    Examples
    --------
    >>> to_rgb(np.array([0.0, 1.0]), 0.0, 1.0).tolist()
    [[68, 1, 84], [253, 231, 37]]
    """
    v = np.asarray(values, dtype=np.float64)
    if hi > lo:
        with np.errstate(invalid="ignore"):
            scaled = np.nan_to_num((v - lo) / (hi - lo), nan=0.0, posinf=1.0, neginf=0.0)
    else:
        scaled = np.zeros_like(v)
    return lut(colormap)[np.clip(np.round(scaled * 255), 0, 255).astype(np.uint8)]


# ---------------------------------------------------------------------------------------------- resizing
def display_size(shape: Sequence[int], side: int, *, enlarge: bool = True) -> tuple[int, int]:
    """(H, W) of ``shape`` scaled so that its longer side is ``side`` (the aspect ratio kept).

    With ``enlarge=False`` a shape already within ``side`` is kept.

    Examples
    --------
    >>> display_size((300, 450), 150), display_size((32, 32), 256), display_size((32, 32), 256, enlarge=False)
    ((100, 150), (256, 256), (32, 32))
    """
    h, w = int(shape[0]), int(shape[1])
    scale = side / max(h, w)
    if not enlarge:
        scale = min(1.0, scale)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize_map(values: np.ndarray, size: Sequence[int], *, resample: str = "bilinear") -> np.ndarray:
    """A float map resized to ``size`` = (H, W), bilinear by default.

    Parameters
    ----------
    values : ndarray, shape (h, w)
    size : (int, int)
        Output (H, W).
    resample : {"bilinear", "nearest", "auto"}
        ``"auto"``: nearest neighbour when no side shrinks (a small map keeps its honest cells), else bilinear.

    Returns
    -------
    ndarray of float32, shape (H, W)

    Examples
    --------
    >>> resize_map(np.full((3, 5), 2.5), (7, 4)).tolist() == np.full((7, 4), 2.5).tolist()
    True
    >>> resize_map(np.eye(2), (4, 4), resample="nearest")[:, 0].tolist()
    [1.0, 1.0, 0.0, 0.0]
    """
    values = np.asarray(values, dtype=np.float32)
    h, w = _size(size)
    if values.ndim != 2:
        raise ValueError(f"values: expected a 2-D map, got shape {values.shape}")
    if values.shape == (h, w):
        return values
    method = _resampling(values.shape, (h, w), resample)
    return np.asarray(Image.fromarray(values, mode="F").resize((w, h), method), dtype=np.float32)


def resize_image(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """A uint8 image resized to ``size`` = (H, W): nearest neighbour when enlarging, bilinear when shrinking.

    Nearest neighbour keeps a small generated image (32×32) crisp on screen instead of blurring it.

    Parameters
    ----------
    image : ndarray of uint8, shape (h, w) or (h, w, C)
    size : (int, int)

    Returns
    -------
    ndarray of uint8, shape (H, W) or (H, W, C)

    Examples
    --------
    >>> resize_image(np.array([[0, 255]], np.uint8), (1, 4)).tolist()
    [[0, 0, 255, 255]]
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image: expected uint8, got {image.dtype}")
    h, w = _size(size)
    if image.shape[:2] == (h, w):
        return image
    method = _resampling(image.shape[:2], (h, w), "auto")
    return np.asarray(Image.fromarray(image).resize((w, h), method))


# ---------------------------------------------------------------------------------------------- overlays
def fade_weights(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """How opaque each value's colour is in a faded overlay, in [0, 1]: its distance from the neutral end.

    For a range centred at zero (``lo < 0 < hi``) the neutral value is 0 and the weight is ``|v| / max(|lo|,
    |hi|)``; otherwise it is the low end and the weight is ``(v − lo) / (hi − lo)``. Values outside the range
    are clipped; non-finite values and an empty range weigh 0.

    Examples
    --------
    >>> fade_weights(np.array([0.0, 0.5, 2.0]), 0.0, 1.0).tolist()
    [0.0, 0.5, 1.0]
    >>> fade_weights(np.array([-1.0, 0.0, 0.5]), -1.0, 1.0).tolist()
    [1.0, 0.0, 0.5]
    """
    v = np.asarray(values, dtype=np.float64)
    if not hi > lo:
        return np.zeros_like(v)
    with np.errstate(invalid="ignore"):
        if lo < 0.0 < hi:
            w = np.abs(v) / max(abs(lo), abs(hi))
        else:
            w = (v - lo) / (hi - lo)
    return np.clip(np.nan_to_num(w, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


def faded_colorscale(colormap: str, *, centred: bool, opacity: float = 1.0, stops: int = 33) -> list[list]:
    """A plotly colour scale whose colours fade to transparent at the neutral end (the rule of
    :func:`fade_weights`): draw it over an image at trace opacity 1, and low values leave the image visible
    instead of tinting it with the colour map's low colour.

    Parameters
    ----------
    colormap : str
        A plotly colour scale name (see :func:`lut`).
    centred : bool
        The range is centred at zero (a diverging map): transparent in the middle, opaque at both ends.
        Otherwise transparent at the low end, opaque at the high end.
    opacity : float in [0, 1]
        Alpha at the opaque end(s).
    stops : int
        Number of evenly spaced stops.

    Returns
    -------
    list of [position, "rgba(r, g, b, a)"]

    Examples
    --------
    >>> faded_colorscale("Viridis", centred=False, stops=2)
    [[0.0, 'rgba(68, 1, 84, 0)'], [1.0, 'rgba(253, 231, 37, 1)']]
    >>> faded_colorscale("RdBu_r", centred=True, opacity=0.5, stops=3)[1][1].endswith(", 0)")
    True
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity: {opacity} is outside [0, 1]")
    if stops < 2:
        raise ValueError(f"stops: need at least 2, got {stops}")
    table = lut(colormap)
    scale = []
    for k in range(stops):
        pos = k / (stops - 1)
        weight = abs(2 * pos - 1) if centred else pos
        r, g, b = (int(c) for c in table[round(pos * 255)])
        scale.append([pos, f"rgba({r}, {g}, {b}, {round(opacity * weight, 4):g})"])
    return scale


def overlay(
    image: np.ndarray,
    values: np.ndarray,
    lo: float,
    hi: float,
    colormap: str = SEQUENTIAL,
    *,
    alpha: float = 0.6,
    fade: bool = False,
) -> np.ndarray:
    """The map coloured by :func:`to_rgb` and blended over the image: ``alpha·colour + (1 − alpha)·image``.

    With ``fade`` the weight of each pixel's colour is ``alpha`` times :func:`fade_weights`: values at the
    neutral end (0, or the low end of a one-signed range) leave the image as it is.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    values : ndarray, shape (h, w)
        The map, resized bilinearly to (H, W) when its shape differs.
    lo, hi : float
        Colour range.
    colormap : str
        A plotly colour scale name.
    alpha : float in [0, 1]
        Weight of the colours; 0 returns the image.
    fade : bool
        Weigh each colour by the value's distance from the neutral end (:func:`fade_weights`).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)

    Examples
    --------
    >>> image = np.full((2, 2, 3), 100, np.uint8)
    >>> bool((overlay(image, np.ones((4, 4)), 0.0, 1.0, alpha=0.0) == image).all())
    True
    >>> overlay(image, np.ones((2, 2)), 0.0, 1.0, alpha=1.0)[0, 0].tolist()
    [253, 231, 37]
    >>> bool((overlay(image, np.zeros((2, 2)), 0.0, 1.0, alpha=1.0, fade=True) == image).all())
    True
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image: expected uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: {alpha} is outside [0, 1]")
    resized = resize_map(values, image.shape[:2])
    colour = to_rgb(resized, lo, hi, colormap)
    weight = alpha * fade_weights(resized, lo, hi)[..., None] if fade else alpha
    return (weight * colour + (1 - weight) * image.astype(np.float64)).round().astype(np.uint8)


# ------------------------------------------------------------------------------------------------ helpers
def with_colour_bar(image: np.ndarray, lo: float, hi: float, colormap: str = SEQUENTIAL) -> np.ndarray:
    """``image`` (uint8 (H, W, 3), a coloured map or an overlay) with its colour bar drawn below it: a strip from
    the colour map's low end to its high end, ``lo`` written at the left and ``hi`` at the right, so a picture
    shown without a chart says what its colours mean.

    >>> with_colour_bar(np.zeros((40, 60, 3), np.uint8), 0.0, 1.0).shape
    (64, 60, 3)
    """
    from PIL import ImageDraw, ImageFont

    h, w = image.shape[:2]
    strip = np.repeat(lut(colormap)[np.linspace(0, 255, w).astype(int)][None], 8, axis=0)
    canvas = Image.new("RGB", (w, 24), (255, 255, 255))
    canvas.paste(Image.fromarray(strip), (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    low, high = f"{lo:.3g}", f"{hi:.3g}"
    draw.text((1, 10), low, fill=(40, 40, 40), font=font)
    right = draw.textlength(high, font=font)
    draw.text((max(w - right - 1, draw.textlength(low, font=font) + 4), 10), high, fill=(40, 40, 40), font=font)
    return np.concatenate([np.asarray(image, np.uint8)[..., :3], np.asarray(canvas)], axis=0)


#: the probed pixel's ring, as the pages' charts draw it
PROBE_RING = (57, 255, 20)


def mark_pixel(image: np.ndarray, xy: tuple[int, int] | None, image_shape: Sequence[int]) -> np.ndarray:
    """``image`` (uint8 (H', W', 3), a picture of an image of ``image_shape``) with a ring around pixel ``xy`` (x, y
    of that image), as the probe marks it on a chart; unchanged when ``xy`` is None.

    >>> marked = mark_pixel(np.zeros((64, 64, 3), np.uint8), (3, 3), (8, 8))
    >>> bool(marked[28, 28].any()), bool(marked.any())  # the centre stays clear, the ring is drawn
    (False, True)
    """
    if xy is None:
        return image
    from PIL import ImageDraw

    h, w = image.shape[:2]
    cx, cy = (xy[0] + 0.5) * w / image_shape[1], (xy[1] + 0.5) * h / image_shape[0]
    r = max(5.0, 0.03 * max(h, w))
    canvas = Image.fromarray(np.asarray(image, np.uint8)[..., :3])
    ImageDraw.Draw(canvas).ellipse((cx - r, cy - r, cx + r, cy + r), outline=PROBE_RING, width=2)
    return np.asarray(canvas)


def data_uri(image: np.ndarray, *, fmt: str = "png") -> str:
    """``image`` (uint8 (H, W, 3)) as a ``data:`` URI for a browser: a PNG written fast (compression level 1;
    plotly takes it much faster than a z-array image, bench/saliency_display.py), or a JPEG at quality 80 (the
    small thumbnails of a table).

    >>> data_uri(np.zeros((2, 2, 3), np.uint8))[:22], data_uri(np.zeros((2, 2, 3), np.uint8), fmt="jpeg")[:23]
    ('data:image/png;base64,', 'data:image/jpeg;base64,')
    """
    import base64
    import io

    options = {"png": {"format": "PNG", "compress_level": 1}, "jpeg": {"format": "JPEG", "quality": 80}}
    if fmt not in options:
        raise ValueError(f"fmt: unknown {fmt!r}; known: {', '.join(options)}")
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buf, **options[fmt])
    return f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _finite(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values)
    return v[np.isfinite(v)]


def _size(size: Sequence[int]) -> tuple[int, int]:
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"size: expected (H, W) of positive ints, got {tuple(size)}")
    return h, w


def _resampling(old: Sequence[int], new: Sequence[int], resample: str) -> Image.Resampling:
    if resample not in RESAMPLING:
        raise ValueError(f"resample: unknown {resample!r}; known: {', '.join(RESAMPLING)}")
    if resample == "auto":
        resample = "nearest" if new[0] >= old[0] and new[1] >= old[1] else "bilinear"
    return Image.Resampling.NEAREST if resample == "nearest" else Image.Resampling.BILINEAR
