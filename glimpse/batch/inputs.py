"""What a batch run reads: a folder (recursive), a glob, a zip, or a CSV/Parquet column of paths.

Every image is an :class:`Item`: its key (the path inside the input, which names its output row) and where its
bytes are. Items are plain strings, so they travel to Ray workers as they are.
"""

from __future__ import annotations

import glob as globbing
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from glimpse.images import IMAGE_SUFFIXES


@dataclass(frozen=True)
class Item:
    """One image of the input: ``key`` names its row; ``source`` is a file, or the zip holding ``member``."""

    key: str
    source: str
    member: str | None = None

    def read(self) -> bytes:
        if self.member is None:
            return Path(self.source).read_bytes()
        with zipfile.ZipFile(self.source) as zf:
            return zf.read(self.member)

    def as_row(self) -> dict[str, str]:
        return {"path": self.key, "source": self.source, "member": self.member or ""}

    @classmethod
    def from_row(cls, row) -> Item:
        return cls(str(row["path"]), str(row["source"]), str(row["member"]) or None)


def _is_image(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def list_inputs(spec: str | os.PathLike, *, column: str = "path") -> list[Item]:
    """The images of ``spec``, sorted by key.

    - a folder: every file with an image suffix below it (keys relative to the folder, ``/``-separated);
    - a ``.zip``: every member with an image suffix (members with absolute or ``..`` paths are refused);
    - a ``.csv`` or ``.parquet`` table: the paths in ``column`` (relative ones resolved against the table's
      folder; the key is the path as written), whatever their suffix;
    - a glob pattern (``*``, ``?``, ``[``; ``**`` recursive): the matching files with an image suffix;
    - one image file.

    Raises ValueError naming what is wrong (nothing found, a missing column, an unsafe zip member).
    """
    text = os.fspath(spec)
    path = Path(text)
    if path.is_dir():
        items = [
            Item(p.relative_to(path).as_posix(), str(p.resolve()))
            for p in path.rglob("*")
            if p.is_file() and _is_image(p.name)
        ]
    elif path.is_file() and path.suffix.lower() == ".zip":
        items = _zip_items(path)
    elif path.is_file() and path.suffix.lower() in (".csv", ".parquet"):
        items = _table_items(path, column)
    elif path.is_file():
        items = [Item(path.name, str(path.resolve()))]
    elif any(ch in text for ch in "*?["):
        items = [
            Item(p, str(Path(p).resolve()))
            for p in globbing.glob(text, recursive=True)
            if Path(p).is_file() and _is_image(p)
        ]
    else:
        raise ValueError(f"input: {text!r} is not a folder, zip, CSV/Parquet table, glob or image file")
    if not items:
        raise ValueError(f"input: no images found in {text!r} (image suffixes: {', '.join(sorted(IMAGE_SUFFIXES))})")
    keys = [i.key for i in items]
    if len(set(keys)) != len(keys):
        raise ValueError(f"input: {text!r} names some images twice; each key must be unique")
    return sorted(items, key=lambda i: i.key)


def _zip_items(path: Path) -> list[Item]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
    except zipfile.BadZipFile as err:
        raise ValueError(f"input: {path.name} is not a readable zip ({err})") from err
    items = []
    for name in names:
        if not _is_image(name):
            continue
        if name.startswith("/") or ".." in PurePosixPath(name).parts or "\\" in name:
            raise ValueError(f"input: {path.name} has an unsafe member name {name[:80]!r}; refusing the zip")
        items.append(Item(name, str(path.resolve()), name))
    return items


def _table_items(path: Path, column: str) -> list[Item]:
    import pandas as pd

    try:
        table = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"input: {path.name} is not a readable table ({str(err).splitlines()[0]})") from err
    if column not in table.columns:
        raise ValueError(f"input: {path.name} has no column {column!r}; columns: {', '.join(map(str, table.columns))}")
    items = []
    for value in table[column].dropna().astype(str):
        p = Path(value)
        items.append(Item(value, str((p if p.is_absolute() else path.parent / p).resolve())))
    return items
