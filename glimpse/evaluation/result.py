"""What every evaluation result shares: how it says it was made, its table rows and its per-image arrays; and the
one loop over images that the per-image benchmarks run.

A benchmark's result is a frozen dataclass of CPU numpy arrays (house rule 2) that subclasses :class:`Result`:
it names its ``benchmark``, returns its settings from :meth:`Result.made_with` and its table from
:meth:`Result.rows`, and :meth:`Result.meta`, :meth:`Result.records` and :meth:`Result.arrays` follow. A result of
several methods scored on the same images (:class:`PanelResult`) also shares the model, the methods and their
parameters. :mod:`glimpse.evaluation.files` writes any of them (CSV, JSON, NPZ) for the command line, the page's
downloads and the run bundle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from glimpse.evaluation.stats import mean_sd


def summary(values: np.ndarray, name: str) -> dict[str, float]:
    """``{name: mean, name_sd: sd}`` over the finite ``values`` (:func:`~glimpse.evaluation.stats.mean_sd`: an
    undefined score, NaN, is left out), the one summary of every benchmark's table.

    >>> summary(np.array([1.0, np.nan, 3.0]), "pgi")
    {'pgi': 2.0, 'pgi_sd': 1.0}
    """
    mean, sd, _ = mean_sd(values)
    return {name: mean, f"{name}_sd": sd}


@dataclass(frozen=True)
class Result:
    """The base of every evaluation result; subclasses set ``benchmark`` and override :meth:`made_with` and
    :meth:`rows` (and :meth:`arrays` where they keep per-image scores)."""

    benchmark: ClassVar[str] = ""

    def made_with(self) -> dict[str, Any]:
        """How the result was made besides the lens and the benchmark, as plain JSON values."""
        raise NotImplementedError

    def rows(self) -> list[dict[str, Any]]:
        """The result's table: one summary row per method (and setting), plain values."""
        raise NotImplementedError

    def meta(self, *, versions: bool = True) -> dict[str, Any]:
        """How the result was made, as plain JSON values: the lens, the benchmark, :meth:`made_with` and (with
        ``versions``) the libraries' versions."""
        from glimpse.versions import library_versions

        out: dict[str, Any] = {"lens": "evaluation", "benchmark": self.benchmark, **self.made_with()}
        if versions:
            out["versions"] = library_versions()
        return out

    def records(self) -> list[dict[str, Any]]:
        """:meth:`rows` with the model first: the rows a command prints and a JSON file holds."""
        return [{"model": self.model_id, **row} for row in self.rows()]  # type: ignore[attr-defined]

    def flat_rows(self) -> list[dict[str, Any]]:
        """:meth:`records` as a flat table wants them (a CSV, a bundle's metrics): no nested values."""
        return self.records()

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-image (or per-retraining) scores for an NPZ, named ``<model>.<method>.<score>``
        (:mod:`glimpse.evaluation.npz`); none by default."""
        return {}


@dataclass(frozen=True)
class PanelResult(Result):
    """Several methods scored on the same images of one model: ``methods[j]`` ran with ``params[j]``."""

    model_id: str
    methods: tuple[str, ...]
    params: tuple[dict[str, Any], ...]

    def method_params(self) -> list[dict[str, Any]]:
        """Each method with its parameters, as ``meta()`` lists them."""
        return [{"method": m, "params": p} for m, p in zip(self.methods, self.params)]

    def per_method(self, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``scores[name][j, …]`` as NPZ arrays ``<model>.<method j>.<name>`` (float64)."""
        return {
            f"{self.model_id}.{method}.{name}": np.asarray(values[j], np.float64)
            for j, method in enumerate(self.methods)
            for name, values in scores.items()
        }


def method_keys(methods: Sequence[str | tuple[str, dict]]) -> tuple[str, ...]:
    """The registry names of ``methods`` as :func:`~glimpse.saliency.explain` takes them (names or (name, params))."""
    return tuple(m if isinstance(m, str) else m[0] for m in methods)


class Images:
    """The loop every per-image benchmark runs: the images' names, progress before each image and at the end.

    >>> loop = Images([np.zeros((2, 2, 3))] * 2, None, lambda f, m: print(f, m))
    >>> [i for i, _ in loop], loop.names
    0.0 image 0 (1 of 2)
    0.5 image 1 (2 of 2)
    1.0 done
    ([0, 1], ('image 0', 'image 1'))
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        names: Sequence[str] | None,
        progress: Callable[[float, str], None] | None,
        *,
        what: str = "image",
        empty: str = "images: give at least one image",
    ) -> None:
        if len(images) == 0:
            raise ValueError(empty)
        self.images = images
        self.names = tuple(names) if names is not None else tuple(f"{what} {i}" for i in range(len(images)))
        self.report = progress or (lambda f, m: None)

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        n = len(self.images)
        for i, image in enumerate(self.images):
            self.report(i / n, f"{self.names[i]} ({i + 1} of {n})")
            yield i, image
        self.report(1.0, "done")
