"""The one NPZ writer and reader of Glimpse, and the zip checks every file from outside goes through.

Every array file Glimpse writes — saliency maps (:mod:`glimpse.saliency.npz`), cross-attention maps
(:mod:`glimpse.attention.export`), a run bundle's ``maps.npz`` (:mod:`glimpse.export`) — is a NumPy ``.npz``
written by :func:`write`: plain numeric or unicode arrays, named by plain keys, and an optional ``meta``
member holding one JSON object whose ``format`` and ``version`` say what the file is. ``numpy.load(f,
allow_pickle=False)`` reads any of them.

:func:`read` treats the file as untrusted: it refuses anything that would need pickle, checks every
``.npy`` header before reading the array, counts decompressed bytes as they come (a header can lie about
sizes), caps the number of members, each member's size, the total and the compression ratio (zip bombs),
checks CRCs, and checks ``meta``'s format and version. Run bundles apply the same member checks
(:func:`check_members`, :func:`read_member`) to the bundle zip itself.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from glimpse.jsonable import json_ready

META_KEY = "meta"
#: Array keys: plain names (they become ``<key>.npy`` members).
KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
#: dtypes an array may have: numbers, booleans and unicode text (never objects, which need pickle).
DTYPE_KINDS = "biufU"

#: What a damaged or hand-made archive raises while being decompressed (unsupported methods included).
CORRUPT = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
)


class NpzError(ValueError):
    """An NPZ (or zip) cannot be written or read; the message says which member and why."""


@dataclass(frozen=True)
class Limits:
    """Caps on an untrusted archive."""

    max_members: int = 512
    max_member_bytes: int = 64 * 2**20
    max_total_bytes: int = 256 * 2**20
    max_ratio: float = 200.0  # uncompressed / compressed; zip bombs reach 1000+
    hint: str = ""  # appended to size messages, e.g. " (limit max_bytes)": which argument to raise


# ----------------------------------------------------------------------------------------------- writing
def write(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None, *, error=NpzError) -> bytes:
    """``arrays`` (and ``meta`` as JSON, if given) as compressed NPZ bytes.

    Parameters
    ----------
    arrays : mapping of str to array
        Plain keys (letters, digits, ``_ . -``; not ``meta``); numeric, boolean or unicode arrays.
    meta : mapping, optional
        Plain JSON values (:func:`glimpse.jsonable.json_ready`); by convention with ``format`` and ``version``.
    error : exception class
        Raised, naming the key, for a bad key or an object array.

    Examples
    --------
    >>> data = write({"m": np.zeros((2, 2), np.float32)}, {"format": "demo", "version": 1})
    >>> arrays, meta = read(data, format="demo", versions=(1,))
    >>> arrays["m"].shape, meta["version"]
    ((2, 2), 1)
    """
    out: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or key == META_KEY or not KEY.fullmatch(key):
            raise error(f"arrays: key {key!r} is not a plain name (letters, digits, _ . -; not 'meta')")
        value = np.asarray(value)
        if value.dtype.kind not in DTYPE_KINDS:
            raise error(f"arrays[{key!r}]: dtype {value.dtype} is not numeric or text; it would need pickle")
        out[key] = value
    if meta is not None:
        text = json.dumps(json_ready(dict(meta), "meta", error), ensure_ascii=False, allow_nan=True)
        out[META_KEY] = np.array(text)
    buf = io.BytesIO()
    np.savez_compressed(buf, **out)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------- reading
def open_zip(source: Any, what: str, error=NpzError, noun: str = "a zip file") -> zipfile.ZipFile:
    """A zip from a path, bytes or a binary file object; ``error`` ("``what``: not ``noun``") if it is none."""
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return zipfile.ZipFile(io.BytesIO(bytes(source)))
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.is_file():
                raise error(f"{what}: no such file {str(path)!r}")
            return zipfile.ZipFile(path)
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, struct.error, EOFError, OSError) as err:
        raise error(f"{what}: not {noun} ({err})") from err


def check_members(infos: list[zipfile.ZipInfo], limits: Limits, what: str, error=NpzError) -> None:
    """Member count, encryption, per-member size, compression ratio and total size, from the headers."""
    if len(infos) > limits.max_members:
        raise error(f"{what}: {len(infos)} members, above the limit of {limits.max_members}")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise error(f"{what}: member {info.filename!r} is encrypted; refusing it")
        if info.file_size > limits.max_member_bytes:
            raise error(
                f"{what}: member {info.filename!r} is {info.file_size:,} bytes uncompressed, above the per-member "
                f"limit of {limits.max_member_bytes:,}{limits.hint}"
            )
        if info.file_size > 2**20 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise error(
                f"{what}: member {info.filename!r} expands {info.file_size / max(info.compress_size, 1):,.0f}-fold "
                f"(limit {limits.max_ratio:g}); looks like a zip bomb"
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise error(f"{what}: more than {limits.max_total_bytes:,} bytes uncompressed in total{limits.hint}")


def read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits, budget: list[int], what: str, error=NpzError
) -> bytes:
    """Decompress one member, counting bytes as they come (headers can lie about sizes); ``budget[0]`` is the
    total still allowed and is reduced by what was read. The CRC is checked."""
    cap = min(limits.max_member_bytes, budget[0])
    # zipfile stops reading at the header's size; let it run one byte past the cap so that a member whose
    # header understates its size is caught by the count below instead of passing truncated
    probe = copy.copy(info)
    probe.file_size = cap + 1
    del probe.CRC  # zipfile would check it at the fake size; checked below at the real one
    chunks, got = [], 0
    try:
        with zf.open(probe) as fh:
            while True:
                chunk = fh.read(min(1 << 16, cap + 1 - got))
                if not chunk:
                    break
                got += len(chunk)
                if got > cap:
                    raise error(
                        f"{what}: member {info.filename!r} decompresses to more than {cap:,} bytes "
                        f"(its header claims {info.file_size:,}){limits.hint}; refusing it"
                    )
                chunks.append(chunk)
    except CORRUPT as err:
        raise error(f"{what}: member {info.filename!r} is corrupt ({err})") from err
    if got != info.file_size:
        raise error(
            f"{what}: member {info.filename!r} holds {got:,} bytes but its header claims {info.file_size:,}; refusing it"
        )
    data = b"".join(chunks)
    if zlib.crc32(data) != info.CRC:
        raise error(f"{what}: member {info.filename!r} fails its CRC-32 check (damaged or tampered)")
    budget[0] -= got
    return data


def _array(raw: bytes, name: str, what: str, error, ndim: int | None) -> np.ndarray:
    """One ``.npy`` member: its header checked (dtype, shape that fits the bytes) before the array is read."""
    fh = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = read_header(fh)
    except ValueError as err:
        raise error(f"{what}: {name} has a bad array header ({err})") from err
    if dtype.hasobject or dtype.kind not in DTYPE_KINDS:
        raise error(f"{what}: {name} has dtype {dtype}; only numeric and text arrays can be read without pickle")
    if (ndim is not None and len(shape) != ndim) or math.prod(shape) * dtype.itemsize > len(raw):
        expected = f"a {ndim}-D array" if ndim is not None else "an array"
        raise error(f"{what}: {name} has shape {shape}; expected {expected} that fits its file")
    fh.seek(0)
    try:
        return np.lib.format.read_array(fh, allow_pickle=False)
    except ValueError as err:
        raise error(f"{what}: {name} cannot be read without pickle ({err})") from err


def read_arrays(
    source: str | os.PathLike | bytes | IO[bytes],
    *,
    limits: Limits = Limits(),
    budget: list[int] | None = None,
    what: str = "npz",
    error=NpzError,
    key: re.Pattern | None = None,
    ndim: int | None = None,
) -> dict[str, np.ndarray]:
    """Every ``<key>.npy`` member of an untrusted NPZ, checked (see the module docstring); ``meta`` stays an array.

    ``key`` restricts member names (default: :data:`KEY`, and ``meta``); ``ndim`` requires that many dimensions of
    every array but ``meta``; ``budget`` shares a running byte allowance with an enclosing archive.
    """
    pattern = key or KEY
    zf = open_zip(source, what, error, noun="an .npz (zip) file")
    budget = [limits.max_total_bytes] if budget is None else budget
    out: dict[str, np.ndarray] = {}
    with zf:
        infos = zf.infolist()
        check_members(infos, limits, what, error)
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else None
            allowed = pattern.fullmatch(name or "") or (key is None and name == META_KEY)
            if name is None or name in out or not allowed:
                raise error(f"{what}: unexpected member {info.filename[:100]!r}")
            raw = read_member(zf, info, limits, budget, what, error)
            out[name] = _array(raw, info.filename, what, error, None if name == META_KEY else ndim)
    return out


def meta_of(arrays: dict[str, np.ndarray], *, what: str = "npz", error=NpzError) -> dict[str, Any] | None:
    """The ``meta`` member as a dict (popped from ``arrays``), or None when there is none."""
    if META_KEY not in arrays:
        return None
    raw = arrays.pop(META_KEY)
    if raw.shape != () or raw.dtype.kind != "U":
        raise error(f"{what}: meta: expected a JSON string (0-d unicode array), got {raw.dtype} {raw.shape}")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as err:
        raise error(f"{what}: meta: not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise error(f"{what}: meta: expected a JSON object, got {type(meta).__name__}")
    return meta


def read(
    source: str | os.PathLike | bytes | IO[bytes],
    *,
    format: str,
    versions: Iterable[int],
    limits: Limits = Limits(),
    error=NpzError,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and the ``meta`` object of an untrusted NPZ written by :func:`write` as ``format``.

    Raises
    ------
    NpzError (or ``error``)
        Not an NPZ, over a cap, an unsafe member, no ``meta``, or another format or version.
    """
    arrays = read_arrays(source, limits=limits, what=format, error=error)
    meta = meta_of(arrays, what=format, error=error)
    if meta is None:
        raise error(f"{format}: no 'meta' entry; not a {format} file")
    if meta.get("format") != format:
        raise error(f"{format}: meta.format: expected {format!r}, got {meta.get('format')!r}")
    readable = tuple(versions)
    version = meta.get("version")
    if isinstance(version, bool) or version not in readable:
        raise error(
            f"{format}: meta.version: this Glimpse reads versions {', '.join(map(str, readable))}, got {version!r}"
        )
    return arrays, meta
