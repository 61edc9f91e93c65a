"""The evaluation lens's NPZ: every result's per-image (or per-retraining) arrays in one file.

Each result (:class:`~glimpse.evaluation.leakage.LeakageResult`,
:class:`~glimpse.evaluation.diffroar.DiffRoarResult`) names its arrays ``<model>.<method>.<score>``
(:meth:`arrays`); ``meta`` holds each result's ``meta()``. Written by :func:`glimpse.npzfile.write`, read back by
:func:`load_evaluation_npz` (checked as an untrusted file).

>>> from glimpse.evaluation.diffroar import DiffRoarResult
>>> r = DiffRoarResult("m", "gradient", {}, (0.1,), (0,), {"top": np.ones((1, 1)), "bottom": np.zeros((1, 1))}, 1)
>>> arrays, meta = load_evaluation_npz(evaluation_npz_bytes([r]))
>>> sorted(arrays), meta["runs"][0]["benchmark"]
(['m.gradient.accuracy_bottom', 'm.gradient.accuracy_top', 'm.gradient.levels'], 'diffroar')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

import numpy as np

from glimpse import npzfile

FORMAT, VERSION = "glimpse-evaluation", 1


def evaluation_npz_bytes(results: Sequence[Any]) -> bytes:
    """One NPZ of every result's :meth:`arrays`, with their ``meta()`` (library versions once, at the top)."""
    from glimpse.versions import library_versions

    arrays: dict[str, np.ndarray] = {}
    for r in results:
        for key, value in r.arrays().items():
            if key in arrays:
                raise ValueError(f"evaluation_npz_bytes: two results write {key!r}")
            arrays[key] = value
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "runs": [r.meta(versions=False) for r in results],
        "versions": library_versions(),
    }
    return npzfile.write(arrays, meta)


def load_evaluation_npz(source: bytes | IO[bytes]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and the meta of an evaluation NPZ (any file: it is checked before it is trusted)."""
    return npzfile.read(source, format=FORMAT, versions=(VERSION,))
