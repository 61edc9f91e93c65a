"""The files of an evaluation run, written one way for the command line (``--out DIR``), the Evaluate page's
downloads and the run bundle's tables.

``<stem>.csv``: the flat rows (:meth:`~glimpse.evaluation.result.Result.flat_rows`, the bundle's CSV writer);
``<stem>.json``: ``{"rows": [...], "runs": [meta(), ...]}`` (the rows of :meth:`~glimpse.evaluation.result.Result.records`
and how each result was made); ``<stem>.npz``: every result's per-image arrays (:mod:`glimpse.evaluation.npz`),
when they have any.

>>> from glimpse.evaluation.diffroar import DiffRoarResult
>>> r = DiffRoarResult("m", "gradient", {}, (0.1,), (0,), {"top": np.ones((1, 1)), "bottom": np.zeros((1, 1))}, 1)
>>> files = EvaluationFiles("diffroar", (r,))
>>> sorted(files.all()), files.csv().decode().splitlines()[0]
(['diffroar.csv', 'diffroar.json', 'diffroar.npz'], 'model,method,k,diffroar,diffroar_sd,accuracy_top,accuracy_bottom')
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glimpse.evaluation.result import Result


@dataclass(frozen=True)
class EvaluationFiles:
    """What a run of ``results`` writes, named ``stem``; ``rows`` replaces the results' own records (a result
    that holds others, as the inversion check holds its curves) and ``extra`` adds keys to the JSON."""

    stem: str
    results: Sequence[Result]
    rows: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        """The rows a command prints (``--json``: one JSON object each) and the JSON file holds."""
        return self.rows if self.rows is not None else [row for r in self.results for row in r.records()]

    def flat_rows(self) -> list[dict[str, Any]]:
        """The CSV's rows."""
        return self.rows if self.rows is not None else [row for r in self.results for row in r.flat_rows()]

    def csv(self) -> bytes:
        from glimpse.export import csv_bytes

        return csv_bytes(tuple(self.flat_rows()))

    def json(self) -> bytes:
        doc = {"rows": self.records(), **self.extra, "runs": [r.meta() for r in self.results]}
        return (json.dumps(doc, indent=2) + "\n").encode("utf-8")

    def npz(self) -> bytes | None:
        """The results' arrays in one NPZ; None when they keep none."""
        from glimpse.evaluation.npz import evaluation_npz_bytes

        return evaluation_npz_bytes(self.results) if any(r.arrays() for r in self.results) else None

    def all(self) -> dict[str, bytes]:
        """Every file by name (the CSV only when the rows are flat)."""
        out = {f"{self.stem}.json": self.json()}
        if self.flat():
            out[f"{self.stem}.csv"] = self.csv()
        npz = self.npz()
        if npz is not None:
            out[f"{self.stem}.npz"] = npz
        return dict(sorted(out.items()))

    def flat(self) -> bool:
        """Whether the CSV's rows hold only plain values (no lists or dicts a spreadsheet cannot show)."""
        return all(not isinstance(v, (dict, list, tuple, np.ndarray)) for row in self.flat_rows() for v in row.values())

    def write(self, folder: str | os.PathLike, extra: dict[str, bytes] | None = None) -> list[Path]:
        """Write every file (and ``extra``: name -> bytes, a plot) into ``folder`` (created); the paths written."""
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, data in {**self.all(), **(extra or {})}.items():
            (root / name).write_bytes(data)
            paths.append(root / name)
        return paths
