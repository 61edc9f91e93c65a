"""Uploaded files as plain values: an :class:`Upload` (name and bytes, keyed by its digest) and the images of a
mixed upload of images and zip archives (:func:`expand_uploads`, zip-bomb safe). The complexity batch and every
Evaluate tab read their uploads through here."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from components.image_input import BY_DIGEST, digest
from glimpse.images import IMAGE_SUFFIXES

#: Zip uploads are untrusted: caps on members, per-member and total uncompressed size.
ZIP_MAX_MEMBERS = 500
ZIP_MAX_MEMBER_BYTES = 25_000_000
ZIP_MAX_TOTAL_BYTES = 300_000_000


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes

    @property
    def digest(self) -> str:
        """The file's bytes' :func:`components.image_input.digest`: what a cached service keys a file on."""
        return digest(self.data)


#: Cached services key an upload on its digest, as they key the picked image (``image_input.BY_DIGEST``).
BY_UPLOAD = {**BY_DIGEST, Upload: lambda up: up.digest}


def expand_uploads(files: list) -> tuple[list[Upload], list[str]]:
    """Image uploads and the image members of zip uploads, plus one message per skipped entry.

    A zip member is named by its path inside the zip (``2023/coffee.jpg``), so same-named files from
    different folders stay apart; a name already taken by an earlier upload gets the zip's name in front
    (``other.zip/2023/coffee.jpg``). Zip members are read only when they look like images, up to
    :data:`ZIP_MAX_MEMBERS` members, :data:`ZIP_MAX_MEMBER_BYTES` each and :data:`ZIP_MAX_TOTAL_BYTES` in all
    (uncompressed sizes as declared, then enforced while reading), so a zip bomb cannot exhaust memory.
    """
    images: list[Upload] = []
    skipped: list[str] = []
    taken: set[str] = set()

    def add(name: str, data: bytes, archive: str | None = None) -> None:
        if name in taken and archive is not None:
            name = f"{archive}/{name}"
        unique, n = name, 1
        while unique in taken:  # e.g. the same zip uploaded twice
            n += 1
            unique = f"{name} ({n})"
        taken.add(unique)
        images.append(Upload(unique, data))

    for f in files:
        data = f.getvalue()
        if not f.name.lower().endswith(".zip"):
            add(f.name, data)
            continue
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            skipped.append(f"{f.name}: not a readable zip file")
            continue
        for path, content in _zip_images(f.name, archive, skipped):
            add(path, content, archive=f.name)
    return images, skipped


def _zip_images(name: str, archive: zipfile.ZipFile, skipped: list[str]):
    """(path, bytes) of each image member within the caps; every other member is named in ``skipped``."""
    total = 0
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > ZIP_MAX_MEMBERS:
        skipped.append(f"{name}: {len(members)} entries, only the first {ZIP_MAX_MEMBERS} are read")
        members = members[:ZIP_MAX_MEMBERS]
    for m in members:
        label = f"{name}/{m.filename}"
        path = m.filename.replace("\\", "/").lstrip("/")  # zips made on Windows may use backslashes
        base = path.rsplit("/", 1)[-1]
        if base.startswith(".") or "__MACOSX" in m.filename or not base.lower().endswith(IMAGE_SUFFIXES):
            skipped.append(f"{label}: not an image file")
            continue
        if m.file_size > ZIP_MAX_MEMBER_BYTES or total + m.file_size > ZIP_MAX_TOTAL_BYTES:
            skipped.append(f"{label}: too large ({m.file_size:,} bytes uncompressed)")
            continue
        try:
            with archive.open(m) as handle:
                content = handle.read(ZIP_MAX_MEMBER_BYTES + 1)
        except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as err:
            skipped.append(f"{label}: unreadable ({err})")
            continue
        if len(content) > ZIP_MAX_MEMBER_BYTES:
            skipped.append(f"{label}: larger than declared, skipped")
            continue
        total += len(content)
        yield path, content
