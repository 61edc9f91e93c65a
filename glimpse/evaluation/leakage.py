"""Feature leakage on BlockDigits: how much of a map lands on the block that carries no information.

For each image the signal block (the digit) and the null block (a fixed patch, the same for every class)
are known (:mod:`glimpse.evaluation.blockdigits`), so two numbers say where a map puts its evidence:

- ``signal_mass``: the share of the positive attribution inside the signal block, the relevance mass of
  :func:`glimpse.evaluation.localisation.relevance_mass` (1 = all of it on the digit);
- ``null_topk``: for k = 2.5, 5, 10, 20, 30 %, the share of the map's top-k % pixels by magnitude that fall
  in the null block (0 = none leaks; 0.5 = no better than chance). Ties at the k-th value count in
  proportion (the expectation over breaking them at random), so a constant map scores 0.5, not an order.

Shah, Jain & Netrapalli (NeurIPS 2021) showed with BlockMNIST that a standard model's input gradients put
much of their top pixels on the null block and an adversarially trained model's do not; a later
reproduction reports 42–48 % (standard) against under 1 % (k ≤ 5 %) to 30 % (k = 30 %) (robust).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from glimpse.evaluation.blockdigits import BlockDigits
from glimpse.evaluation.localisation import relevance_mass, top_share
from glimpse.evaluation.result import Result
from glimpse.evaluation.stats import mean_sd, same_settings

#: the top-k percentages of ``null_topk``
TOPK: tuple[float, ...] = (2.5, 5.0, 10.0, 20.0, 30.0)

#: settings for 64×32 BlockDigits images where the published tables were made with them (occlusion's 8-px window at
#: stride 4, which they keep, rather than the 5/2 its default scales to on a 32-px side), or where fewer samples
#: give the same table for a fraction of the time
BENCHMARK_PARAMS: dict[str, dict[str, Any]] = {
    "occlusion": {"window": 8, "stride": 4},
    "rise": {"grid": 4},
    "lime": {"segments": 24},
    "kernel_shap": {"segments": 24},
}


def blockdigits_params(method: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """``method``'s parameters on BlockDigits: :data:`BENCHMARK_PARAMS` where it has any, then ``overrides``.

    >>> blockdigits_params("occlusion", {"stride": 8})
    {'window': 8, 'stride': 8}
    """
    return {**BENCHMARK_PARAMS.get(method, {}), **(overrides or {})}


def signal_mass(values: np.ndarray, signal_mask: np.ndarray) -> float:
    """Share of the positive attribution inside the signal block, in [0, 1]; NaN if nothing is positive.

    >>> signal_mass(np.array([[1.0, -5.0], [3.0, 0.0]]), np.array([[True, True], [False, False]]))
    0.25
    """
    return relevance_mass(values, signal_mask)


def null_topk(values: np.ndarray, null_mask: np.ndarray, k: float) -> float:
    """Share of the top-``k`` % pixels by ``|value|`` that lie in ``null_mask`` (ties counted in proportion).

    >>> m = np.array([[0.0, 0.0], [2.0, 1.0]]); null = np.array([[True, True], [False, False]])
    >>> null_topk(m, null, 50), null_topk(np.ones((2, 2)), null, 25)
    (0.0, 0.5)
    """
    values = np.abs(np.asarray(values, dtype=np.float64))
    null_mask = np.asarray(null_mask, dtype=bool)
    if values.ndim != 2 or null_mask.shape != values.shape:
        raise ValueError(f"null_mask: shape {null_mask.shape} differs from the map's {values.shape}")
    if not 0 < k <= 100:
        raise ValueError(f"k: a percentage in (0, 100], got {k}")
    if not np.isfinite(values).all():
        return float("nan")
    return top_share(values, null_mask, max(1, math.ceil(k / 100 * values.size - 1e-9)))


@dataclass(frozen=True)
class MethodLeakage:
    """One method's scores on every image: ``signal_mass`` (N,) and ``null_topk`` (N, len(ks))."""

    method: str
    label: str
    params: dict[str, Any]
    signal_mass: np.ndarray
    null_topk: np.ndarray
    seconds: float

    def summary(self, ks: Sequence[float]) -> dict[str, Any]:
        """Means and standard deviations over the images (NaN images left out), as plain JSON values."""
        mass, mass_sd, _ = mean_sd(self.signal_mass)
        out: dict[str, Any] = {"method": self.method, "label": self.label, "signal_mass": mass}
        out["signal_mass_sd"] = mass_sd
        out["null_topk"] = {f"{k:g}": mean_sd(self.null_topk[:, i])[0] for i, k in enumerate(ks)}
        out["null_topk_sd"] = {f"{k:g}": mean_sd(self.null_topk[:, i])[1] for i, k in enumerate(ks)}
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass(frozen=True)
class LeakageResult(Result):
    """The leakage of every method on one model: images, settings and per-image scores."""

    benchmark: ClassVar[str] = "blockdigits-leakage"
    model_id: str
    images: int
    ks: tuple[float, ...]
    seed: int
    split: str
    data_seed: int
    accuracy: float  # of the model on the scored images
    methods: tuple[MethodLeakage, ...] = field(default=())

    @classmethod
    def merge(cls, parts: Sequence[LeakageResult]) -> LeakageResult:
        """One result of consecutive parts of a run (``first`` = 0, n, 2n, …: a job's steps), equal to the result
        of one call over all their images: scores concatenated, accuracy weighted by images, seconds summed."""
        same_settings(parts, ("model_id", "ks", "seed", "split", "data_seed"), "leakage")
        if len(parts) == 1:
            return parts[0]
        images = sum(p.images for p in parts)
        accuracy = sum(p.accuracy * p.images for p in parts) / images
        methods = []
        for j, m in enumerate(parts[0].methods):
            if any(p.methods[j].method != m.method for p in parts):
                raise ValueError("leakage: parts differ in their methods")
            mass = np.concatenate([p.methods[j].signal_mass for p in parts])
            top = np.concatenate([p.methods[j].null_topk for p in parts])
            seconds = float(sum(p.methods[j].seconds for p in parts))
            methods.append(MethodLeakage(m.method, m.label, m.params, mass, top, seconds))
        first = parts[0]
        return cls(first.model_id, images, first.ks, first.seed, first.split, first.data_seed, accuracy, tuple(methods))

    def rows(self) -> list[dict[str, Any]]:
        """One summary per method (:meth:`MethodLeakage.summary`), in the order run."""
        return [m.summary(self.ks) for m in self.methods]

    def records(self) -> list[dict[str, Any]]:
        """:meth:`rows` with the model and its accuracy first."""
        return [{"model": self.model_id, "accuracy": self.accuracy, **row} for row in self.rows()]

    def flat_rows(self) -> list[dict[str, Any]]:
        """:meth:`records` as flat tables want them (a CSV, a bundle's metrics): model, accuracy, method, label,
        signal mass and its sd, ``null_top{k}`` and ``null_top{k}_sd`` per k, seconds."""
        out = []
        for row in self.records():
            flat = {key: row[key] for key in ("model", "accuracy", "method", "label", "signal_mass", "signal_mass_sd")}
            flat.update({f"null_top{k}": v for k, v in row["null_topk"].items()})
            flat.update({f"null_top{k}_sd": v for k, v in row["null_topk_sd"].items()})
            flat["seconds"] = row["seconds"]
            out.append(flat)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-image scores, for an NPZ: ``<model>.<method>.signal_mass`` (N,) and ``….null_topk``
        (N, len(ks)), and ``<model>.ks``."""
        out: dict[str, np.ndarray] = {f"{self.model_id}.ks": np.asarray(self.ks, np.float64)}
        for m in self.methods:
            out[f"{self.model_id}.{m.method}.signal_mass"] = np.asarray(m.signal_mass, np.float64)
            out[f"{self.model_id}.{m.method}.null_topk"] = np.asarray(m.null_topk, np.float64)
        return out

    def made_with(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "images": self.images,
            "split": self.split,
            "data_seed": self.data_seed,
            "seed": self.seed,
            "ks": list(self.ks),
            "accuracy": self.accuracy,
            "methods": [{"method": m.method, "params": m.params} for m in self.methods],
        }


def leakage_benchmark(
    bundle,
    data: BlockDigits,
    methods: Sequence[str | tuple[str, dict]],
    *,
    images: int | None = None,
    first: int = 0,
    ks: Sequence[float] = TOPK,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> LeakageResult:
    """Score every method's map of the true class on the first ``images`` images of ``data``.

    One :func:`glimpse.saliency.explain` call per image serves all methods (methods that share a pass share
    it). Maps are at the model's input resolution, which for the BlockDigits classifiers is the image's.

    Parameters
    ----------
    bundle : ClassifierBundle
        A classifier of BlockDigits images (input (64, 32)).
    data : BlockDigits
    methods : registry keys, optionally with parameters, as for :func:`glimpse.saliency.explain`.
    images : how many images (None: all of ``data`` from ``first``).
    first : the first image scored: a run in parts scores ``first`` = 0, n, 2n, … and merges them
        (:meth:`LeakageResult.merge`).
    ks : the top-k percentages.
    seed : seeds every method's random draws (the same for every image).
    progress : called with (fraction done, message).
    """
    from glimpse.saliency import REGISTRY, explain  # the engine imports torch-heavy parts; only when run

    first = int(first)
    if not 0 <= first < len(data):
        raise ValueError(f"first: between 0 and {len(data) - 1}, got {first}")
    n = len(data) - first if images is None else int(images)
    if not 1 <= n <= len(data) - first:
        raise ValueError(f"images: between 1 and {len(data) - first} from image {first}, got {images}")
    index = range(first, first + n)
    if tuple(bundle.input_size) != data.images.shape[1:]:
        raise ValueError(
            f"model: {bundle.model_id} takes {bundle.input_size[0]}x{bundle.input_size[1]} images, "
            f"BlockDigits are {data.images.shape[1]}x{data.images.shape[2]}"
        )
    ks = tuple(float(k) for k in ks)
    names = [m if isinstance(m, str) else m[0] for m in methods]
    mass = np.full((len(names), n), np.nan)
    top = np.full((len(names), n, len(ks)), np.nan)
    seconds = np.zeros(len(names))
    params: list[dict] = [{} for _ in names]
    signal, null = data.signal_masks(), data.null_masks()
    report = progress or (lambda f, m: None)
    with bundle.lock, torch.no_grad():  # the accuracy on the scored images: batched forwards, not one per image
        logits = [
            bundle.model(bundle.preprocess_batch([data.rgb(i) for i in index[start : start + 128]]))
            for start in range(0, n, 128)
        ]
    correct = int((torch.cat(logits).argmax(1).cpu().numpy() == data.labels[index.start : index.stop]).sum())
    for i, d in enumerate(index):
        report(i / n, f"image {d + 1} of {index.stop}")
        maps = explain(bundle, data.rgb(d), methods, target=int(data.labels[d]), seed=seed)
        for j, m in enumerate(maps):
            mass[j, i] = signal_mass(m.values, signal[d])
            top[j, i] = [null_topk(m.values, null[d], k) for k in ks]
            seconds[j] += m.seconds
            params[j] = dict(m.params)
    report(1.0, "done")
    rows = tuple(
        MethodLeakage(name, REGISTRY[name].info.label, params[j], mass[j], top[j], float(seconds[j]))
        for j, name in enumerate(names)
    )
    return LeakageResult(bundle.model_id, n, ks, seed, data.split, data.seed, correct / n, rows)
