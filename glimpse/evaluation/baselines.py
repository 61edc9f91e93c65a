"""Which baseline should a path method use? Scored per metric, after BEE (Metric-adapted baselines).

Integrated Gradients, DeepLIFT and GradientSHAP explain an image relative to a baseline, and the map depends
on it. Rather than fix one, score each baseline of :data:`glimpse.saliency.contract.BASELINES` (black,
blurred, uniform noise, the image's mean colour) on each faithfulness metric and report which one each metric
prefers: the deletion AUC (lower is better) and the insertion AUC (higher is better) of
:func:`glimpse.evaluation.deletion.deletion_insertion`, for the map of the top-1 class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from glimpse.evaluation.deletion import deletion_insertion
from glimpse.saliency.contract import BASELINES
from glimpse.versions import library_versions

PATH_METHODS = ("integrated_gradients", "deeplift", "gradient_shap")
#: metric -> +1 if higher is better, -1 if lower is better
METRICS = {"deletion_auc": -1, "insertion_auc": +1}


@dataclass(frozen=True)
class BaselineResult:
    """``scores[metric][j, b, i]``: method j with baseline ``baselines[b]`` on image i."""

    model_id: str
    methods: tuple[str, ...]
    baselines: tuple[str, ...]
    names: tuple[str, ...]
    steps: int
    scores: dict[str, np.ndarray]
    seed: int

    def rows(self) -> list[dict[str, Any]]:
        """Per method and baseline: each metric's mean and sd over the images."""
        out = []
        for j, method in enumerate(self.methods):
            for b, baseline in enumerate(self.baselines):
                row: dict[str, Any] = {"method": method, "baseline": baseline}
                for metric in METRICS:
                    v = self.scores[metric][j, b]
                    row[metric], row[f"{metric}_sd"] = float(v.mean()), float(v.std())
                out.append(row)
        return out

    def preferred(self) -> dict[str, dict[str, str]]:
        """{method: {metric: the baseline with the best mean}}."""
        out: dict[str, dict[str, str]] = {}
        for j, method in enumerate(self.methods):
            means = {m: self.scores[m][j].mean(axis=1) for m in METRICS}
            out[method] = {m: self.baselines[int(np.argmax(sign * means[m]))] for m, sign in METRICS.items()}
        return out

    def meta(self, *, versions: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "lens": "evaluation",
            "benchmark": "baselines",
            "model_id": self.model_id,
            "images": list(self.names),
            "methods": list(self.methods),
            "baselines": list(self.baselines),
            "deletion_steps": self.steps,
            "seed": self.seed,
            "preferred": self.preferred(),
        }
        if versions:
            out["versions"] = library_versions()
        return out


def baseline_scores(
    bundle,
    images: Sequence[np.ndarray],
    *,
    methods: Sequence[str] = PATH_METHODS,
    baselines: Sequence[str] = tuple(BASELINES),
    params: dict[str, dict] | None = None,
    names: Sequence[str] | None = None,
    steps: int = 10,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> BaselineResult:
    """Deletion and insertion AUC of each (method, baseline) map of the top-1 class on each image."""
    from glimpse.saliency import explain

    if not images:
        raise ValueError("images: give at least one image")
    for b in baselines:
        if b not in BASELINES:
            raise ValueError(f"baseline: unknown {b!r}; known: {', '.join(BASELINES)}")
    names = tuple(names) if names is not None else tuple(f"image {i}" for i in range(len(images)))
    report = progress or (lambda f, m: None)
    shape = (len(methods), len(baselines), len(images))
    scores = {m: np.zeros(shape) for m in METRICS}
    for i, image in enumerate(images):
        report(i / len(images), f"{names[i]} ({i + 1} of {len(images)})")
        for b, baseline in enumerate(baselines):  # one panel per baseline (a method appears once per call)
            panel = [(m, {**(params or {}).get(m, {}), "baseline": baseline}) for m in methods]
            for j, m in enumerate(explain(bundle, image, panel, seed=seed)):
                curve = deletion_insertion(bundle, image, m.values, target=int(m.target.index), steps=steps)
                scores["deletion_auc"][j, b, i] = curve.deletion_auc
                scores["insertion_auc"][j, b, i] = curve.insertion_auc
    report(1.0, "done")
    return BaselineResult(bundle.model_id, tuple(methods), tuple(baselines), names, steps, scores, seed)
