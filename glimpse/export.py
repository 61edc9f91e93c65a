"""Run bundles: one zip that holds a Compare run — inputs, parameters, raw maps, overlays, metrics, report.

Layout of a bundle (every name is on an allow-list; nothing else is accepted on import)::

    manifest.json        format/version, created time, image name + sha1, prompt, model ids, seeds,
                         every parameter, library versions, per-map metadata, metric tables (JSON)
    input.png            the image that was explained (lossless)
    saliency.npz         the saliency maps, in Glimpse's one saliency NPZ format (glimpse.saliency.npz:
                         the file the saliency page downloads and `python -m glimpse saliency --out` writes)
    maps.npz             the other raw maps (complexity, attention), one float array per manifest entry
                         (keys m000, m001, ...: the map's position in the run)
    overlays/m<i>.png    each map over the image, with a colour bar (for people; ignored on import)
    metrics/<name>.csv   each metric table (for spreadsheets; the manifest's JSON copy is what is read back)
    report.html          a self-contained summary: images as base64 data URIs, no scripts, opens offline

Bundles from elsewhere are untrusted. :func:`read_bundle` and :func:`extract_bundle` never unpickle
(arrays are read with ``allow_pickle=False`` after their header is checked: no object dtypes), reject
member names that are absolute, contain ``..`` or a backslash, or are not on the allow-list (``.pkl``,
``.pt``, ... are named as pickles), and cap the member count, each member's size (from its header AND
counted while decompressing, so a lying header does not help), the total size and the compression ratio.
Every rejection is a :class:`BundleError` (a ValueError) saying what was wrong.

Each manifest ``maps`` entry names its array by ``file`` (``saliency.npz`` or ``maps.npz``) and ``key``.
Version 1 bundles (every map in maps.npz, no ``file``) are still read.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import hashlib
import html
import io
import json
import math
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageDraw

from glimpse.display import DIVERGING, auto_scale, display_size, lut, overlay, resize_image
from glimpse.jsonable import json_ready
from glimpse.npzfile import Limits, check_members, open_zip, read_arrays, read_member
from glimpse.npzfile import write as write_arrays
from glimpse.versions import library_versions

FORMAT = "glimpse-run"
VERSION = 2
READABLE_VERSIONS = (1, 2)
SALIENCY_NPZ = "saliency.npz"

#: Defaults for untrusted input.
MAX_MEMBERS = 512
MAX_MEMBER_BYTES = 64 * 2**20
MAX_TOTAL_BYTES = 256 * 2**20
MAX_RATIO = 200.0  # uncompressed / compressed; zip bombs reach 1000+
MAX_PIXELS = 25_000_000
#: Longer side of the overlay PNGs and the report's images.
OVERLAY_SIDE = 256

#: Libraries whose versions are recorded (whichever are installed; looked up by distribution name so
#: that glimpse never imports streamlit).

_ALLOWED = (
    re.compile(r"manifest\.json"),
    re.compile(r"input\.png"),
    re.compile(r"maps\.npz"),
    re.compile(r"saliency\.npz"),
    re.compile(r"report\.html"),
    re.compile(r"overlays/[A-Za-z0-9_.-]{1,80}\.png"),
    re.compile(r"metrics/[A-Za-z0-9_.-]{1,80}\.csv"),
    re.compile(r"(overlays|metrics)/"),
)
_PICKLE_LIKE = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".npy", ".bin", ".dill")
_MAP_DTYPES = ("float16", "float32", "float64", "uint8", "bool", "int32", "int64")


class BundleError(ValueError):
    """A bundle cannot be written or read; the message says which member and why."""


@dataclass(frozen=True)
class MapEntry:
    """One raw map of a run.

    ``name`` is unique within the run (e.g. ``"saliency: Grad-CAM"``); ``kind`` is ``"saliency"``,
    ``"complexity"`` or ``"attention"``; ``meta`` is JSON-serialisable (method, params, model id, target,
    layer, seed, ...).
    """

    name: str
    kind: str
    values: np.ndarray
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunRecord:
    """Everything a Compare run shows, in plain data: what a bundle holds and restores.

    ``params`` holds every choice made (methods, k, layer, display options, ...), ``models`` the model
    ids by role (``{"classifier": ..., "t2i": ...}``), ``seeds`` the seeds by role, ``tables`` metric
    tables by name as lists of flat dicts (rows), ``versions`` library versions at creation.
    """

    image: np.ndarray
    image_name: str
    maps: tuple[MapEntry, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    models: Mapping[str, str] = field(default_factory=dict)
    seeds: Mapping[str, int] = field(default_factory=dict)
    prompt: str | None = None
    tables: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    created: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)

    def map(self, name: str) -> MapEntry:
        """The map called ``name``."""
        for entry in self.maps:
            if entry.name == name:
                return entry
        raise KeyError(f"map: no map {name!r}; have: {', '.join(e.name for e in self.maps)}")

    @property
    def map_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.maps)


def now() -> str:
    """UTC creation time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


# --------------------------------------------------------------------------------------------- writing


def _sha1(arr: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(arr).tobytes()).hexdigest()


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def colour_scale(values: np.ndarray) -> tuple[str, float, float]:
    """(colour map, low, high) with which the overlays draw one raw map (:func:`glimpse.display.auto_scale`).

    A map with any negative value is signed: diverging ``RdBu_r`` over ±max|v|, so 0 is the neutral middle
    colour. Otherwise sequential ``Viridis`` from 0 to its maximum, so 0 means none. Non-finite values are
    left out of the range. The Compare page colours its raw panels by the same rule.
    """
    return auto_scale(values)


def _scale_note(name: str, lo: float, hi: float) -> str:
    if name == DIVERGING:
        return f"diverging {name} centred at 0, ±{hi:.3g}"
    return f"sequential {name} from 0 to {hi:.3g}"


def overlay_png(image: np.ndarray, values: np.ndarray, *, title: str = "", alpha: float = 0.6) -> bytes:
    """The map over the image in the colours of :func:`colour_scale`, with a colour bar of raw values.

    Drawn at most ``OVERLAY_SIDE`` pixels on the longer side (small images are enlarged to it, nearest
    neighbour, so a 32×32 generated image stays legible); the raw maps are in the bundle's NPZ files.
    """
    h, w = display_size(image.shape, OVERLAY_SIDE)
    image = resize_image(image, (h, w))
    name, lo, hi = colour_scale(values)
    blended = overlay(image, values, lo, hi, name, alpha=alpha)
    bar_w, pad, text_w, top = max(8, w // 30), 6, 70, 18
    canvas = Image.new("RGB", (w + pad + bar_w + text_w, h + top), "white")
    canvas.paste(Image.fromarray(blended), (0, top))
    ramp = lut(name)[np.linspace(255, 0, h).astype(np.uint8)][:, None, :].repeat(bar_w, axis=1)
    canvas.paste(Image.fromarray(ramp), (w + pad, top))
    draw = ImageDraw.Draw(canvas)
    draw.text((2, 2), title[:80], fill="black")
    draw.text((w + pad + bar_w + 3, top), f"{hi:.3g}", fill="black")
    if name == DIVERGING:
        draw.text((w + pad + bar_w + 3, top + h // 2 - 6), "0", fill="black")
    draw.text((w + pad + bar_w + 3, top + h - 12), f"{lo:.3g}", fill="black")
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def csv_bytes(rows: tuple[Mapping[str, Any], ...]) -> bytes:
    """One CSV of flat rows, every key a column in the order first seen: a bundle's metric tables and the
    evaluation files (:mod:`glimpse.evaluation.files`)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:60] or "table"


def _report_html(run: RunRecord, manifest: dict, overlays: dict[str, bytes]) -> bytes:
    def img(data: bytes, alt: str) -> str:
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'

    def table(rows) -> str:
        if not rows:
            return "<p>(empty)</p>"
        cols = list(dict.fromkeys(c for r in rows for c in r))
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows
        )
        return f"<table><tr>{head}</tr>{body}</table>"

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Glimpse run: {html.escape(run.image_name)}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em;max-width:1200px}img{max-width:100%}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
        ".grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure{margin:0;width:300px}"
        "figcaption{font-size:12px}</style></head><body>",
        f"<h1>Glimpse run — {html.escape(run.image_name)}</h1>",
        f"<p>Created {html.escape(run.created)}. Models: {html.escape(_fmt(dict(run.models)))}. "
        f"Seeds: {html.escape(_fmt(dict(run.seeds)))}.</p>",
    ]
    if run.prompt:
        parts.append(f"<p>Prompt: <b>{html.escape(run.prompt)}</b></p>")
    parts.append(
        "<div class='grid'><figure>" + img(_png(run.image), "input") + "<figcaption>input</figcaption></figure>"
    )
    for i, entry in enumerate(run.maps):
        parts.append(
            f"<figure>{img(overlays[_map_id(i)], entry.name)}<figcaption>{html.escape(entry.name)}"
            f"<br><i>{html.escape(_scale_note(*colour_scale(entry.values)))}</i>"
            f"<br>{html.escape(_fmt(dict(entry.meta)))}</figcaption></figure>"
        )
    parts.append("</div>")
    for name, rows in run.tables.items():
        parts.append(f"<h2>{html.escape(name)}</h2>{table(rows)}")
    parts.append("<h2>Parameters</h2><pre>" + html.escape(json.dumps(manifest["params"], indent=2)) + "</pre>")
    parts.append("<h2>Library versions</h2>" + table([manifest["versions"]]))
    parts.append("</body></html>")
    return "\n".join(parts).encode("utf-8")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items() if v is not None)  # unset fields say nothing
    return str(value)


def write_bundle(run: RunRecord, target: str | os.PathLike | IO[bytes]) -> None:
    """Write ``run`` as a bundle zip to a path or a binary file object (e.g. ``io.BytesIO``).

    Raises
    ------
    BundleError
        Duplicate map names, maps that are not 2-D numeric arrays, or metadata that is not plain JSON.
    """
    image = np.asarray(run.image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise BundleError(f"image: expected uint8 (H, W, 3), got {image.dtype} {image.shape}")
    names = [e.name for e in run.maps]
    if len(set(names)) != len(names):
        raise BundleError(f"maps: names must be unique, got {names}")
    from glimpse.saliency.npz import ImageRef, NpzFormatError, map_from_meta, map_meta, write_npz

    arrays: dict[str, np.ndarray] = {}
    saliency = []
    entries = []
    for i, entry in enumerate(run.maps):
        where = f"maps[{entry.name!r}]"
        values = np.asarray(entry.values)
        if values.ndim != 2 or values.dtype.name not in _MAP_DTYPES:
            raise BundleError(f"{where}: expected a 2-D numeric map, got {values.dtype} {values.shape}")
        if entry.kind == "saliency":
            try:
                m = map_from_meta(values, entry.meta, where=where)
            except NpzFormatError as err:
                raise BundleError(f"{err} (build a saliency map's meta with glimpse.saliency.npz.map_meta)") from err
            saliency.append(m)
            values, file, key, meta = m.values, SALIENCY_NPZ, m.method, map_meta(m)
        else:
            file, key, meta = "maps.npz", _map_id(i), json_ready(entry.meta, f"{where}.meta", BundleError)
            arrays[key] = values
        entries.append(
            {
                "file": file,
                "key": key,
                "name": entry.name,
                "kind": entry.kind,
                "shape": list(values.shape),
                "dtype": values.dtype.name,
                "sha1": _sha1(values),
                "meta": meta,
            }
        )
    saliency_npz = None
    if saliency:
        try:
            saliency_npz = write_npz(saliency, image=ImageRef(run.image_name, _sha1(image), image.shape[:2]))
        except NpzFormatError as err:
            raise BundleError(f"{SALIENCY_NPZ}: {err}") from err
    tables = {str(k): json_ready(list(rows), f"tables[{k!r}]", BundleError) for k, rows in run.tables.items()}
    table_files = {}
    for name in tables:
        fname = f"metrics/{_safe_name(name)}.csv"
        if fname in table_files.values():
            raise BundleError(f"tables: {name!r} clashes with another table's file name {fname}")
        table_files[name] = fname
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created": run.created or now(),
        "image": {"name": run.image_name, "file": "input.png", "shape": list(image.shape), "sha1": _sha1(image)},
        "prompt": run.prompt,
        "models": json_ready(dict(run.models), "models", BundleError),
        "seeds": json_ready(dict(run.seeds), "seeds", BundleError),
        "params": json_ready(dict(run.params), "params", BundleError),
        "versions": json_ready(dict(run.versions) or library_versions(), "versions", BundleError),
        "maps": entries,
        "tables": tables,
        "table_files": table_files,
    }
    run_for_report = RunRecord(**{**run.__dict__, "created": manifest["created"]})
    overlays = {
        _map_id(i): overlay_png(image, np.asarray(entry.values, dtype=np.float32), title=entry.name)
        for i, entry in enumerate(run.maps)
    }
    npz = write_arrays(arrays, error=BundleError)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest, indent=1, allow_nan=True))
        zf.writestr("input.png", _png(image))
        zf.writestr("maps.npz", npz)
        if saliency_npz is not None:
            zf.writestr(SALIENCY_NPZ, saliency_npz)
        for key, data in overlays.items():
            zf.writestr(f"overlays/{key}.png", data)
        for name, fname in table_files.items():
            zf.writestr(fname, csv_bytes(tuple(tables[name])))
        zf.writestr("report.html", _report_html(run_for_report, manifest, overlays))


def _map_id(i: int) -> str:
    """The id of the run's i-th map: its maps.npz key (non-saliency maps) and its overlay's file name."""
    return f"m{i:03d}"


def bundle_bytes(run: RunRecord) -> bytes:
    """The bundle as bytes (for a download button)."""
    buf = io.BytesIO()
    write_bundle(run, buf)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------- reading


def _limits(max_members: int, max_member_bytes: int, max_total_bytes: int, max_ratio: float) -> Limits:
    return Limits(max_members, max_member_bytes, max_total_bytes, max_ratio)


def _check_name(name: str) -> None:
    shown = repr(name[:100])
    if "\x00" in name or "\\" in name:
        raise BundleError(f"bundle: member {shown} has a backslash or NUL in its name; refusing it")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise BundleError(f"bundle: member {shown} has an absolute path; refusing it")
    if any(part == ".." for part in name.split("/")):
        raise BundleError(f"bundle: member {shown} contains '..' (path traversal); refusing it")
    if name.lower().endswith(_PICKLE_LIKE):
        raise BundleError(
            f"bundle: member {shown} is a pickle-capable or raw array file; bundles never contain those "
            "(maps live in maps.npz and are read without pickle)"
        )
    if not any(p.fullmatch(name) for p in _ALLOWED):
        raise BundleError(
            f"bundle: unexpected member {shown}; a Glimpse bundle holds only manifest.json, input.png, maps.npz, "
            "saliency.npz, report.html, overlays/*.png and metrics/*.csv"
        )


def _load(source: Any, limits: Limits) -> dict[str, bytes]:
    """Validated member bytes by name."""
    zf = open_zip(source, "bundle", BundleError)
    with zf:
        infos = zf.infolist()
        for info in infos:
            _check_name(info.filename)
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise BundleError("bundle: duplicate member names")
        check_members(infos, limits, "bundle", BundleError)
        budget = [limits.max_total_bytes]
        return {i.filename: read_member(zf, i, limits, budget, "bundle", BundleError) for i in infos if not i.is_dir()}


def read_bundle(
    source: str | os.PathLike | bytes | IO[bytes],
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_members: int = MAX_MEMBERS,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_ratio: float = MAX_RATIO,
) -> RunRecord:
    """Read a bundle written by :func:`write_bundle` back into the same :class:`RunRecord`.

    The maps, image, parameters and tables come from the bundle; nothing is recomputed. Integrity is
    checked (sha1 of the image and of every map against the manifest).

    Raises
    ------
    BundleError
        Not a zip; unsafe or unexpected member names; pickle-capable members; too many members; a member or
        the total over its size cap (by header or by actual decompressed size); zip-bomb ratios; object or
        non-2-D arrays; a missing or malformed manifest; checksum mismatches.
    """
    limits = _limits(max_members, max_member_bytes, max_total_bytes, max_ratio)
    return _decode(_load(source, limits), limits)


def _decode(files: dict[str, bytes], limits: Limits) -> RunRecord:
    for needed in ("manifest.json", "input.png", "maps.npz"):
        if needed not in files:
            raise BundleError(f"bundle: {needed} is missing; is this a Glimpse run bundle?")
    try:
        manifest = json.loads(files["manifest.json"].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"manifest.json: not valid JSON ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError("manifest.json: not a Glimpse run manifest (format != 'glimpse-run')")
    version = manifest.get("version")
    if version not in READABLE_VERSIONS:
        raise BundleError(
            f"manifest.json: bundle version {version!r}; this Glimpse reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    from glimpse.images import ImageLoadError, load_image
    from glimpse.saliency.npz import map_meta

    try:
        image = load_image(files["input.png"], max_pixels=MAX_PIXELS)
    except ImageLoadError as err:
        raise BundleError(f"input.png: {err}") from err
    info = _get(manifest, "image", dict)
    if _sha1(image) != info.get("sha1"):
        raise BundleError("input.png: pixels do not match the manifest's checksum")
    arrays = read_arrays(
        files["maps.npz"], limits=limits, what="maps.npz", error=BundleError, key=re.compile(r"m\d{3,5}"), ndim=2
    )
    odd = [k for k, v in arrays.items() if v.dtype.name not in _MAP_DTYPES]
    if odd:
        raise BundleError(f"maps.npz: {odd[0]}.npy has dtype {arrays[odd[0]].dtype}; only numeric maps are accepted")
    saliency = _read_saliency(files.get(SALIENCY_NPZ), image, limits)
    maps = []
    for entry in _get(manifest, "maps", list):
        if not isinstance(entry, dict):
            raise BundleError("manifest.json: a maps entry is not an object")
        file, key, name = entry.get("file", "maps.npz"), entry.get("key"), entry.get("name")
        if file == SALIENCY_NPZ and version >= 2:
            if key not in saliency:
                raise BundleError(f"{SALIENCY_NPZ}: map {key!r} of {name!r} is missing")
            m = saliency[key]
            values, meta = m.values, map_meta(m)
        elif file == "maps.npz":
            if key not in arrays:
                raise BundleError(f"maps.npz: array {key!r} of map {name!r} is missing")
            values, meta = arrays[key], entry.get("meta") or {}
        else:
            raise BundleError(f"manifest.json: map {name!r} names an unknown file {str(file)[:80]!r}")
        if _sha1(values) != entry.get("sha1"):
            raise BundleError(f"{file}: map {name!r} does not match the manifest's checksum")
        maps.append(MapEntry(str(name), str(entry.get("kind")), values, meta))
    tables = {str(k): tuple(v) for k, v in _get(manifest, "tables", dict).items()}
    return RunRecord(
        image=image,
        image_name=str(info.get("name", "image")),
        maps=tuple(maps),
        params=_get(manifest, "params", dict),
        models=_get(manifest, "models", dict),
        seeds=_get(manifest, "seeds", dict),
        prompt=manifest.get("prompt"),
        tables=tables,
        created=str(manifest.get("created", "")),
        versions=_get(manifest, "versions", dict),
    )


def _read_saliency(data: bytes | None, image: np.ndarray, limits: Limits) -> dict:
    """The saliency maps of ``saliency.npz`` by method key (none when the bundle has no such member)."""
    if data is None:
        return {}
    from glimpse.saliency.npz import NpzFormatError, read_npz

    try:
        contents = read_npz(data, max_bytes=limits.max_total_bytes)
    except NpzFormatError as err:
        raise BundleError(f"{SALIENCY_NPZ}: {err}") from err
    if not contents.image.matches(image) or contents.image.size != image.shape[:2]:
        raise BundleError(f"{SALIENCY_NPZ}: its image digest or size does not match input.png")
    return {m.method: m for m in contents.maps}


def _get(manifest: dict, key: str, kind: type) -> Any:
    value = manifest.get(key, kind())
    if not isinstance(value, kind):
        raise BundleError(f"manifest.json: {key!r} should be a {kind.__name__}")
    return value


def extract_bundle(
    source: str | os.PathLike | bytes | IO[bytes],
    folder: str | os.PathLike,
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_members: int = MAX_MEMBERS,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_ratio: float = MAX_RATIO,
) -> list[Path]:
    """Unpack a bundle into ``folder`` after the same checks as :func:`read_bundle`.

    Each destination's resolved path must lie inside the resolved folder (symlinks in the folder cannot
    redirect a write); nothing is written unless every member passes. Returns the written paths.
    """
    limits = _limits(max_members, max_member_bytes, max_total_bytes, max_ratio)
    files = _load(source, limits)
    root = Path(folder).resolve()
    planned = []
    for name, data in files.items():
        dest = (root / name).resolve()
        if not dest.is_relative_to(root) or dest == root:
            raise BundleError(f"bundle: member {name!r} would be written outside {str(root)!r}; refusing it")
        planned.append((dest, data))
    written = []
    for dest, data in planned:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        written.append(dest)
    return written
