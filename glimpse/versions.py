"""Versions of the libraries that shape a result's numbers: every result's ``meta()`` records them."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

#: Distributions whose versions a result records (glimpse's own first).
LIBRARIES = (
    "glimpse",
    "torch",
    "diffusers",
    "transformers",
    "captum",
    "numpy",
    "scipy",
    "scikit-image",
    "scikit-learn",
    "pillow",
    "streamlit",
    "plotly",
)


def library_versions() -> dict[str, str]:
    """Installed versions of :data:`LIBRARIES` (those present) and Python's; read once per process.

    >>> "python" in library_versions() and "numpy" in library_versions()
    True
    """
    return dict(_versions())


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    out = [("python", platform.python_version())]
    for name in LIBRARIES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(out)
