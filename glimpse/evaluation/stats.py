"""How the benchmarks summarise per-image scores: the mean and standard deviation over the defined ones."""

from __future__ import annotations

import numpy as np


def same_settings(parts, fields: tuple[str, ...], kind: str) -> None:
    """Raise ValueError unless every part of a merge has the same ``fields`` (the parts of one run over images).

    Per-image benchmarks run in parts (a job's steps) and are merged with their ``merge`` class methods; a part
    made with other settings would silently mix two experiments."""
    if not parts:
        raise ValueError(f"{kind}: nothing to merge")
    first = parts[0]
    for p in parts[1:]:
        for name in fields:
            if getattr(p, name) != getattr(first, name):
                raise ValueError(f"{kind}: parts differ in {name} ({getattr(first, name)!r} vs {getattr(p, name)!r})")


def mean_sd(values: np.ndarray) -> tuple[float, float, int]:
    """Mean, standard deviation and count of the finite ``values`` (an undefined score, NaN, is left out);
    (NaN, NaN, 0) when none is finite.

    >>> mean_sd(np.array([1.0, np.nan, 3.0]))
    (2.0, 1.0, 2)
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std()), int(v.size)
