"""Class sensitivity (Rebuffi, Fong, Ji & Vedaldi, "There and Back Again", CVPR 2020).

A map should depend on the class it explains. Per image: the Spearman rank correlation (signed maps, no
absolute value) between the method's map for the class the model finds most likely and its map for the
class it finds least likely; averaged over images. Lower is better: a class-insensitive method draws the
same map for any class and scores 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from glimpse.compare.agreement import spearman
from glimpse.evaluation.result import Images, PanelResult, method_keys
from glimpse.evaluation.stats import mean_sd, same_settings


@dataclass(frozen=True)
class SensitivityResult(PanelResult):
    """``rho[j, i]``: method j's correlation on image i; ``classes[i]``: (most likely, least likely) class."""

    benchmark: ClassVar[str] = "class-sensitivity"
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

    def made_with(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "images": list(self.image_names),
            "classes": [list(c) for c in self.classes],
            "seed": self.seed,
            "methods": self.method_params(),
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Every image's correlation: ``<model>.<method>.rho`` (images,)."""
        return self.per_method({"rho": self.rho})


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

    loop = Images(images, names, progress)
    if bundle.num_classes < 2:
        raise ValueError(f"model: {bundle.model_id} has {bundle.num_classes} class; class sensitivity needs two")
    rho = np.full((len(methods), len(images)), np.nan)
    classes, first = [], []
    how = {"seed": seed, "layer": layer, "noise_tunnel": noise_tunnel}
    for i, image in loop:
        top, bottom = extreme_classes(bundle, image)
        classes.append((top, bottom))
        first = explain(bundle, image, methods, target=top, **how)
        last = explain(bundle, image, methods, target=bottom, **how)
        for j, (a, b) in enumerate(zip(first, last)):
            rho[j, i] = spearman(a.values, b.values)
    params = tuple(dict(m.params) for m in first)
    return SensitivityResult(bundle.model_id, method_keys(methods), params, loop.names, tuple(classes), rho, seed)
