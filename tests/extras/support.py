"""What the extras tests share: skip a module whose optional package does not import here."""

from __future__ import annotations

import pytest

from models.hub import import_extra
from models.registry import ModelLoadError


def need(name: str):
    """The optional package ``name``, or skip the whole test module saying where it runs.

    ``pytest.importorskip`` is not enough: beside a torch it was not built for, ``import torchvision`` (and
    ``import timm``, which imports it) raises RuntimeError, which Glimpse's own :func:`models.hub.import_extra`
    turns into the ModelLoadError caught here.
    """
    try:
        return import_extra(name)
    except ModelLoadError as err:
        pytest.skip(f"{err}; `make test-extras` runs this in .venv-extras", allow_module_level=True)
