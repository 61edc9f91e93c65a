"""One NPZ format for saliency maps: what the saliency page downloads, ``python -m glimpse saliency --out``
writes and a Compare run bundle holds as ``saliency.npz``.

>>> import numpy as np
>>> from glimpse.saliency import SaliencyMap, Target
>>> from glimpse.saliency.npz import ImageRef, read_npz, write_npz
>>> pixels = np.zeros((480, 640, 3), np.uint8)  # the explained image
>>> gradcam = SaliencyMap("gradcam", np.ones((224, 224), np.float32), (), "efficientnet-lite0", Target(285),
...                       "Egyptian cat", "head_act", 0, None, 0.1)  # as explain(...) returns it
>>> data = write_npz([gradcam], image=ImageRef.of(pixels, "photo.jpg"))
>>> back = read_npz(data)
>>> back.maps[0].target_label, back.maps[0].values.shape, back.image.size
('Egyptian cat', (224, 224), (480, 640))
>>> back.at_image_size()["gradcam"].shape
(480, 640)

Format ``glimpse-saliency``, version 2
--------------------------------------
A NumPy ``.npz`` archive (``numpy.savez_compressed``) with these members, all readable with
``numpy.load(path, allow_pickle=False)``:

``<method>`` (one per map)
    float32, shape (h, w): the raw, signed map at the **model-input resolution** (e.g. 224 × 224), exactly
    :attr:`glimpse.saliency.SaliencyMap.values` — no normalisation, no resizing. The member name is the
    method's registry key (``gradient``, ``gradcam``, ``integrated_gradients``, ...), so
    ``np.load(f)["gradcam"]`` works. The model input is the whole image resized bilinearly (no crop), so
    the map at the image's size is a bilinear resize of it to ``image.height × image.width``
    (:meth:`SaliencyNpz.at_image_size`, :meth:`glimpse.saliency.SaliencyMap.at_size`).
``meta``
    a 0-d unicode array holding one JSON object (``json.loads(str(npz["meta"]))``)::

        {
          "format": "glimpse-saliency",              # always this string
          "version": 2,                              # this format's version (an int)
          "image": {
            "name": str,                             # file or sample name of the explained image
            "digest": str,                           # sha1 hex of the image's uint8 RGB pixels, C order
                                                     #   (H x W x 3 bytes): 40 digits, or a prefix of >= 16
            "height": int, "width": int              # the image's size in pixels (not the model input's)
          },
          "maps": [                                  # one object per map, in the writer's order
            {
              "key": str,                            # the member holding the map (= "method")
              "shape": [h, w],                       # the member's shape
              "dtype": "float32",
              "method": str,                         # registry key of the method
              "params": {name: value, ...},          # every parameter of the method; tuples become lists
              "noise_tunnel": {                      # the noise tunnel the method ran in, or null
                "kind": str, "samples": int,         #   (SmoothGrad's tunnel is its own params)
                "noise": float
              } | null,
              "model_id": str,                       # the classifier explained
              "target": int,                         # class index of the explained score S_target ...
              "contrast": int | null,                # ... minus S_contrast when set
              "target_label": str,                   # the explained score in words ("tabby − tiger cat")
              "layer": str | null,                   # the hooked layer (CAM-type methods), else null
              "seed": int,                           # seed of every random draw
              "completeness_gap": float | null,      # |sum attr - (S(x) - S(baseline))| / |S(x) - S(baseline)|
              "steps_used": int | null,              # gradient passes an adaptive path method spent
              "seconds": float                       # compute time
            }, ...
          ]
        }

Nothing else is stored (method-specific extras such as superpixel labels are not). Version 1 differs only
in the maps' noise tunnel: it had no ``noise_tunnel`` entry and put the tunnel's options among the ``params``
as ``"noise_tunnel.<name>"``; :func:`read_npz` reads both versions into the same :class:`SaliencyMap`.
:func:`read_npz` checks all of it — format and version, one member per ``maps`` entry with the stated shape and dtype, no other
members, no pickles, a size cap counted while decompressing — and raises :class:`NpzFormatError` (a
ValueError) naming what is wrong.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from glimpse.npzfile import Limits, meta_of, read_arrays, write
from glimpse.saliency.base import SaliencyMap, Target

FORMAT = "glimpse-saliency"
VERSION = 2
#: Versions :func:`read_npz` reads (version 1: the noise tunnel among the params, see the module docstring).
READABLE_VERSIONS = (1, 2)
#: Version 1's prefix of the noise tunnel's options among a map's params.
LEGACY_TUNNEL_PREFIX = "noise_tunnel."
META_KEY = "meta"
#: Default cap on the uncompressed size of everything read from one file.
MAX_BYTES = 256 * 2**20

_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
_DIGEST = re.compile(r"[0-9a-f]{16,40}")
_MAP_FIELDS = (
    "method",
    "params",
    "model_id",
    "target",
    "contrast",
    "target_label",
    "layer",
    "seed",
    "completeness_gap",
    "steps_used",
    "seconds",
    "noise_tunnel",
)
#: Fields a map's metadata may lack: version-1 files and run bundles had no steps_used and no noise_tunnel.
_OPTIONAL_FIELDS = ("steps_used", "noise_tunnel")


class NpzFormatError(ValueError):
    """A saliency NPZ cannot be written or read; the message names the entry and the problem."""


@dataclass(frozen=True)
class ImageRef:
    """The explained image, as the NPZ records it: name, pixel digest and size (height, width)."""

    name: str
    digest: str
    size: tuple[int, int]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise NpzFormatError(f"image.name: expected a string, got {type(self.name).__name__}")
        if not isinstance(self.digest, str) or not _DIGEST.fullmatch(self.digest):
            raise NpzFormatError(
                f"image.digest: expected 16 to 40 lowercase hex digits of the pixels' sha1, got {self.digest!r}"
            )
        size = tuple(self.size) if isinstance(self.size, (tuple, list)) else ()
        if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size):
            raise NpzFormatError(f"image.size: expected (height, width) in pixels, got {self.size!r}")
        if min(size) < 1:
            raise NpzFormatError(f"image.size: height and width must be positive, got {size}")
        object.__setattr__(self, "size", (int(size[0]), int(size[1])))

    @classmethod
    def of(cls, pixels: np.ndarray, name: str) -> ImageRef:
        """The reference of a uint8 RGB (H, W, 3) image: full sha1 of its pixel bytes and its size."""
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise NpzFormatError(f"image: expected uint8 RGB (H, W, 3), got {pixels.dtype} {pixels.shape}")
        digest = hashlib.sha1(np.ascontiguousarray(pixels).tobytes()).hexdigest()
        return cls(name, digest, pixels.shape[:2])

    def matches(self, pixels: np.ndarray) -> bool:
        """Whether ``pixels`` are the image this reference names (its digest, or the digest's prefix)."""
        return ImageRef.of(pixels, self.name).digest.startswith(self.digest)


@dataclass(frozen=True)
class SaliencyNpz:
    """What :func:`read_npz` returns: the image reference and the maps (values at model-input resolution)."""

    image: ImageRef
    maps: tuple[SaliencyMap, ...]

    def at_image_size(self) -> dict[str, np.ndarray]:
        """Each map resized bilinearly to the image's size, by method key (float32 (H, W))."""
        h, w = self.image.size
        return {m.method: m.at_size(h, w) for m in self.maps}


# ------------------------------------------------------------------------------------ per-map metadata
def _tupled(value: Any) -> Any:
    """JSON lists back to the tuples the engine uses, so a read map's params equal the written ones."""
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def map_meta(m: SaliencyMap) -> dict[str, Any]:
    """The JSON object that describes ``m`` in the NPZ (the ``maps`` entries, less ``key``/``shape``/``dtype``).

    Compare runs keep this as a saliency map's ``meta``, so a run bundle and this format share one schema.
    """
    try:
        meta = m.meta(versions=False)
    except ValueError as err:
        raise NpzFormatError(str(err)) from err
    meta.pop("lens")
    return meta


def _split_tunnel(params: Mapping[str, Any], meta: Mapping[str, Any], where: str) -> tuple[dict, tuple | None]:
    """(the method's own params, the noise tunnel as sorted pairs or None), from either version's metadata."""
    own = {str(k): v for k, v in params.items() if not str(k).startswith(LEGACY_TUNNEL_PREFIX)}
    legacy = {
        str(k)[len(LEGACY_TUNNEL_PREFIX) :]: v for k, v in params.items() if str(k).startswith(LEGACY_TUNNEL_PREFIX)
    }
    tunnel = meta.get("noise_tunnel")
    if legacy and tunnel is not None:
        raise NpzFormatError(f"{where}: a noise tunnel both in noise_tunnel and among the params ({sorted(legacy)})")
    tunnel = tunnel if tunnel is not None else legacy or None
    if tunnel is None:
        return own, None
    kinds = {"kind": (str,), "samples": (int,), "noise": (int, float)}
    if (
        not isinstance(tunnel, Mapping)
        or set(tunnel) != set(kinds)
        or any(isinstance(tunnel[k], bool) or not isinstance(tunnel[k], t) for k, t in kinds.items())
    ):
        raise NpzFormatError(
            f"{where}.noise_tunnel: expected an object with kind (str), samples (int) and noise (number), "
            f"got {tunnel!r}"
        )
    return own, (("kind", tunnel["kind"]), ("noise", float(tunnel["noise"])), ("samples", tunnel["samples"]))


def map_from_meta(values: np.ndarray, meta: Mapping[str, Any], *, where: str = "map") -> SaliencyMap:
    """Rebuild a :class:`SaliencyMap` from its values and :func:`map_meta`'s object (checked field by field).

    ``params`` may also be a list of ``[name, value]`` pairs (how version-1 run bundles stored them). Metadata
    without ``noise_tunnel`` (version-1 files and bundles) may hold the tunnel's options among its ``params``
    as ``"noise_tunnel.<name>"``: they become the map's ``noise_tunnel``.
    """
    if not isinstance(meta, Mapping):
        raise NpzFormatError(f"{where}: metadata must be a JSON object, got {type(meta).__name__}")
    missing = [f for f in _MAP_FIELDS if f not in meta and f not in _OPTIONAL_FIELDS]
    if missing:
        raise NpzFormatError(f"{where}: metadata lacks {missing}; a saliency map records {', '.join(_MAP_FIELDS)}")

    def check(name: str, kinds: tuple[type, ...], optional: bool = False) -> Any:
        value = meta.get(name)
        if value is None and optional:
            return None
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds) + (" or null" if optional else "")
            raise NpzFormatError(f"{where}.{name}: expected {names}, got {value!r}")
        return value

    params = meta["params"]
    if isinstance(params, list) and all(isinstance(p, list) and len(p) == 2 for p in params):
        params = dict(params)
    if not isinstance(params, Mapping):
        raise NpzFormatError(f"{where}.params: expected an object of parameter values, got {params!r}")
    params, tunnel = _split_tunnel(params, meta, where)
    try:
        target = Target(check("target", (int,)), check("contrast", (int,), optional=True))
    except ValueError as err:
        raise NpzFormatError(f"{where}.target: {err}") from err
    steps = check("steps_used", (int,), optional=True)
    gap = check("completeness_gap", (int, float), optional=True)
    values = np.asarray(values)
    if values.ndim != 2 or values.dtype.kind != "f":
        raise NpzFormatError(f"{where}: expected a 2-D float map, got {values.dtype} {values.shape}")
    return SaliencyMap(
        method=check("method", (str,)),
        values=values.astype(np.float32, copy=False),
        params=tuple((str(k), _tupled(v)) for k, v in params.items()),
        model_id=check("model_id", (str,)),
        target=target,
        target_label=check("target_label", (str,)),
        layer=check("layer", (str,), optional=True),
        seed=check("seed", (int,)),
        completeness_gap=None if gap is None else float(gap),
        seconds=float(check("seconds", (int, float))),
        noise_tunnel=tunnel,
        extras={} if steps is None else {"steps_used": int(steps)},
    )


# --------------------------------------------------------------------------------------------- writing
def write_npz(maps: Sequence[SaliencyMap], *, image: ImageRef) -> bytes:
    """The maps and the image reference in the ``glimpse-saliency`` NPZ format (see the module docstring).

    Parameters
    ----------
    maps : sequence of SaliencyMap
        Raw maps as :func:`glimpse.saliency.explain` returns them (model-input resolution); one per method.
    image : ImageRef
        The explained image (``ImageRef.of(pixels, name)``, or name + digest + size when the pixels are gone).

    Returns
    -------
    bytes
        The ``.npz`` file's content (compressed).

    Raises
    ------
    NpzFormatError
        No maps, a method twice, a method key that is not a plain name, a map that is not 2-D, or
        parameters that are not JSON values.
    """
    if not isinstance(image, ImageRef):
        raise NpzFormatError(f"image: expected an ImageRef (ImageRef.of(pixels, name)), got {type(image).__name__}")
    if not maps:
        raise NpzFormatError("maps: nothing to write; pass at least one SaliencyMap")
    arrays: dict[str, np.ndarray] = {}
    entries = []
    for m in maps:
        if not isinstance(m, SaliencyMap):
            raise NpzFormatError(f"maps: expected glimpse.saliency.SaliencyMap objects, got {type(m).__name__}")
        key = str(m.method)
        if key in arrays or key == META_KEY or not _KEY.fullmatch(key):
            why = "appears twice" if key in arrays else "is not a plain name, or clashes with 'meta'"
            raise NpzFormatError(f"maps: method key {key!r} {why}; one map per method")
        values = np.asarray(m.values)
        if values.ndim != 2:
            raise NpzFormatError(f"maps[{key!r}]: expected a 2-D map, got shape {values.shape}")
        arrays[key] = np.ascontiguousarray(values, dtype=np.float32)
        entries.append({"key": key, "shape": list(values.shape), "dtype": "float32", **map_meta(m)})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "image": {"name": image.name, "digest": image.digest, "height": image.size[0], "width": image.size[1]},
        "maps": entries,
    }
    return write(arrays, meta, error=NpzFormatError)


def save_npz(path: str | os.PathLike, maps: Sequence[SaliencyMap], *, image: ImageRef) -> Path:
    """:func:`write_npz` to a file (its folder is created); returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise NpzFormatError(f"path: expected a .npz file name, got {str(path)!r}")
    data = write_npz(maps, image=image)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------------------------- reading
def read_npz(source: str | os.PathLike | bytes | IO[bytes], *, max_bytes: int = MAX_BYTES) -> SaliencyNpz:
    """Read a file written by :func:`write_npz` (a path, bytes or a binary file object).

    The file may come from anyone: nothing is unpickled, the uncompressed size is capped at ``max_bytes``
    (counted while decompressing), and the metadata must describe exactly the arrays present.

    Raises
    ------
    NpzFormatError
        Not an NPZ, another format or version, over the size cap, a pickled or non-float map, a map missing
        or not described, a shape that differs from the metadata's, or malformed metadata.
    """
    limits = Limits(max_member_bytes=max_bytes, max_total_bytes=max_bytes, hint=" (limit max_bytes)")
    arrays = read_arrays(source, limits=limits, error=NpzFormatError)
    meta = meta_of(arrays, error=NpzFormatError)
    if meta is None:
        raise NpzFormatError("npz: no 'meta' entry; not a Glimpse saliency NPZ")
    if meta.get("format") != FORMAT:
        raise NpzFormatError(
            f"meta.format: expected {FORMAT!r}, got {meta.get('format') if isinstance(meta, dict) else meta!r}"
        )
    version = meta.get("version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise NpzFormatError(f"meta.version: this Glimpse reads versions {readable}, got {version!r}")
    info = meta.get("image")
    if not isinstance(info, dict):
        raise NpzFormatError("meta.image: expected an object with name, digest, height, width")
    image = ImageRef(info.get("name"), info.get("digest"), (info.get("height"), info.get("width")))
    entries = meta.get("maps")
    if not isinstance(entries, list) or not entries:
        raise NpzFormatError("meta.maps: expected a non-empty list of map objects")
    maps = []
    for i, entry in enumerate(entries):
        where = f"meta.maps[{i}]"
        if not isinstance(entry, dict) or entry.get("key") not in arrays:
            key = entry.get("key") if isinstance(entry, dict) else None
            raise NpzFormatError(f"{where}: its array {key!r} is missing from the file")
        values = arrays.pop(entry["key"])
        if list(values.shape) != entry.get("shape") or values.dtype.name != entry.get("dtype"):
            raise NpzFormatError(
                f"{where}: the array is {values.dtype} {list(values.shape)}, the metadata says "
                f"{entry.get('dtype')} {entry.get('shape')}"
            )
        if values.dtype != np.float32 or values.ndim != 2:
            raise NpzFormatError(f"{where}: maps are float32 (h, w), got {values.dtype} {values.shape}")
        if entry.get("method") != entry["key"]:
            raise NpzFormatError(f"{where}: key {entry['key']!r} differs from method {entry.get('method')!r}")
        maps.append(map_from_meta(values, entry, where=where))
    if arrays:
        raise NpzFormatError(f"npz: arrays {sorted(arrays)} are not described in meta.maps")
    return SaliencyNpz(image=image, maps=tuple(maps))
