"""Plain JSON values for the files Glimpse writes (NPZ metadata, run bundles): nothing is pickled."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def json_ready(value: Any, where: str, error: type[Exception] = ValueError) -> Any:
    """``value`` as plain JSON types (tuples become lists, NumPy scalars Python numbers), checked recursively.

    Anything else is a writer's bug and raises ``error`` naming ``where`` (e.g. ``maps['gradcam'].params.k``).

    >>> json_ready({"k": (1, np.float32(0.5))}, "params")
    {'k': [1, 0.5]}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): json_ready(v, f"{where}.{k}", error) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v, f"{where}[{i}]", error) for i, v in enumerate(value)]
    raise error(f"{where}: {type(value).__name__} is not a JSON value; store plain values")
