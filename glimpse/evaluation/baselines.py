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
from typing import Any, ClassVar

import numpy as np

from glimpse.evaluation.deletion import deletion_insertion
from glimpse.evaluation.result import Images, Result, summary
from glimpse.saliency.contract import BASELINES

PATH_METHODS = ("integrated_gradients", "deeplift", "gradient_shap")
#: metric -> +1 if higher is better, -1 if lower is better
METRICS = {"deletion_auc": -1, "insertion_auc": +1}


@dataclass(frozen=True)
class BaselineResult(Result):
    """``scores[metric][j, b, i]``: method j with baseline ``baselines[b]`` on image i."""

    benchmark: ClassVar[str] = "baselines"
    model_id: str
    methods: tuple[str, ...]
    baselines: tuple[str, ...]
    names: tuple[str, ...]
    steps: int
    scores: dict[str, np.ndarray]
    seed: int

    def rows(self) -> list[dict[str, Any]]:
        """Per method and baseline: each metric's mean and sd over the images (NaN images left out)."""
        out = []
        for j, method in enumerate(self.methods):
            for b, baseline in enumerate(self.baselines):
                row: dict[str, Any] = {"method": method, "baseline": baseline}
                for metric in METRICS:
                    row.update(summary(self.scores[metric][j, b], metric))
                out.append(row)
        return out

    def preferred(self) -> dict[str, dict[str, str]]:
        """{method: {metric: the baseline with the best mean}}."""
        out: dict[str, dict[str, str]] = {}
        for j, method in enumerate(self.methods):
            means = {m: self.scores[m][j].mean(axis=1) for m in METRICS}
            out[method] = {m: self.baselines[int(np.argmax(sign * means[m]))] for m, sign in METRICS.items()}
        return out

    def made_with(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "images": list(self.names),
            "methods": list(self.methods),
            "baselines": list(self.baselines),
            "deletion_steps": self.steps,
            "seed": self.seed,
            "preferred": self.preferred(),
        }

    def records(self) -> list[dict[str, Any]]:
        """:meth:`rows` with the model first and, per row, the metrics that prefer its baseline."""
        preferred = self.preferred()
        return [
            {**row, "preferred_by": [m for m, b in preferred[row["method"]].items() if b == row["baseline"]]}
            for row in super().records()
        ]

    def arrays(self) -> dict[str, np.ndarray]:
        """Every image's AUCs: ``<model>.<method>.<metric>`` (len(baselines), images)."""
        return {
            f"{self.model_id}.{method}.{metric}": np.asarray(self.scores[metric][j], np.float64)
            for j, method in enumerate(self.methods)
            for metric in METRICS
        }


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

    loop = Images(images, names, progress)
    for b in baselines:
        if b not in BASELINES:
            raise ValueError(f"baseline: unknown {b!r}; known: {', '.join(BASELINES)}")
    shape = (len(methods), len(baselines), len(images))
    scores = {m: np.zeros(shape) for m in METRICS}
    for i, image in loop:
        for b, baseline in enumerate(baselines):  # one panel per baseline (a method appears once per call)
            panel = [(m, {**(params or {}).get(m, {}), "baseline": baseline}) for m in methods]
            for j, m in enumerate(explain(bundle, image, panel, seed=seed)):
                curve = deletion_insertion(bundle, image, m.values, target=int(m.target.index), steps=steps)
                scores["deletion_auc"][j, b, i] = curve.deletion_auc
                scores["insertion_auc"][j, b, i] = curve.insertion_auc
    return BaselineResult(bundle.model_id, tuple(methods), tuple(baselines), loop.names, steps, scores, seed)
