"""Class sensitivity (Rebuffi, Fong, Ji & Vedaldi, "There and Back Again", CVPR 2020).

A map should depend on the class it explains. Per image: the Spearman rank correlation (signed maps, no
absolute value) between the method's map for the class the model finds most likely and its map for the
class it finds least likely; averaged over images. Lower is better: a class-insensitive method draws the
same map for any class and scores 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from glimpse.compare.agreement import spearman
from glimpse.evaluation.stats import mean_sd, same_settings
from glimpse.versions import library_versions


@dataclass(frozen=True)
class SensitivityResult:
    """``rho[j, i]``: method j's correlation on image i; ``classes[i]``: (most likely, least likely) class."""

    model_id: str
    methods: tuple[str, ...]
    params: tuple[dict[str, Any], ...]
    image_names: tuple[str, ...]
    classes: tuple[tuple[int, int], ...]
    rho: np.ndarray  # (methods, images)
    seed: int

    @classmethod
    def merge(cls, parts: Sequence[SensitivityResult]) -> SensitivityResult:
        """One result of parts of a run over images (a job's steps), equal to one call over all the images."""
        same_settings(parts, ("model_id", "methods", "seed"), "class sensitivity")
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        names = tuple(n for p in parts for n in p.image_names)
        classes = tuple(c for p in parts for c in p.classes)
        rho = np.concatenate([p.rho for p in parts], axis=1)
        return cls(first.model_id, first.methods, first.params, names, classes, rho, first.seed)

    def rows(self) -> list[dict[str, Any]]:
        """Per method: ``class_sensitivity`` (mean ρ over the images with a defined ρ), its sd and the count."""
        out = []
        for j, name in enumerate(self.methods):
            mean, sd, count = mean_sd(self.rho[j])
            out.append({"method": name, "class_sensitivity": mean, "class_sensitivity_sd": sd, "images": count})
        return out

    def meta(self, *, versions: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "lens": "evaluation",
            "benchmark": "class-sensitivity",
            "model_id": self.model_id,
            "images": list(self.image_names),
            "classes": [list(c) for c in self.classes],
            "seed": self.seed,
            "methods": [{"method": m, "params": p} for m, p in zip(self.methods, self.params)],
        }
        if versions:
            out["versions"] = library_versions()
        return out


def extreme_classes(bundle, image: np.ndarray) -> tuple[int, int]:
    """(most likely, least likely) class of ``image`` under ``bundle``'s softmax (first index on ties)."""
    with bundle.lock, torch.no_grad():
        logits = bundle.model(bundle.preprocess(image)).float()[0]
    return int(logits.argmax()), int(logits.argmin())


def class_sensitivity(
    bundle,
    images: Sequence[np.ndarray],
    methods: Sequence[str | tuple[str, dict]],
    *,
    names: Sequence[str] | None = None,
    seed: int = 0,
    layer: str | None = None,
    noise_tunnel: dict | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> SensitivityResult:
    """Class sensitivity of each method on ``images`` (uint8 RGB), one :func:`~glimpse.saliency.explain` per
    image and class serving all methods (``seed``, ``layer`` and ``noise_tunnel`` as for ``explain``).

    Raises
    ------
    ValueError
        No images, a model with fewer than two classes, or an unknown method or parameter.
    """
    from glimpse.saliency import explain

    if len(images) == 0:
        raise ValueError("images: give at least one image")
    if bundle.num_classes < 2:
        raise ValueError(f"model: {bundle.model_id} has {bundle.num_classes} class; class sensitivity needs two")
    names = tuple(names) if names is not None else tuple(f"image {i}" for i in range(len(images)))
    report = progress or (lambda f, m: None)
    rho = np.full((len(methods), len(images)), np.nan)
    classes, params = [], [{} for _ in methods]
    for i, image in enumerate(images):
        report(i / len(images), f"{names[i]} ({i + 1} of {len(images)})")
        top, bottom = extreme_classes(bundle, image)
        classes.append((top, bottom))
        how = {"seed": seed, "layer": layer, "noise_tunnel": noise_tunnel}
        first = explain(bundle, image, methods, target=top, **how)
        last = explain(bundle, image, methods, target=bottom, **how)
        for j, (a, b) in enumerate(zip(first, last)):
            rho[j, i] = spearman(a.values, b.values)
            params[j] = dict(a.params)
    report(1.0, "done")
    keys = tuple(m if isinstance(m, str) else m[0] for m in methods)
    return SensitivityResult(bundle.model_id, keys, tuple(params), names, tuple(classes), rho, seed)
