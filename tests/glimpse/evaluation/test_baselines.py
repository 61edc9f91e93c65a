"""Baselines of the path methods scored per metric (after BEE), and the mean-colour baseline."""

from __future__ import annotations

import numpy as np
import pytest

from glimpse.evaluation.baselines import PATH_METHODS, baseline_scores
from glimpse.saliency import explain
from glimpse.saliency.contract import BASELINES
from tests.tiny_models import cnn_bundle, image


def test_every_baseline_of_every_path_method_is_scored_and_one_is_preferred_per_metric():
    bundle = cnn_bundle()
    params = {"integrated_gradients": {"steps": 8}, "gradient_shap": {"samples": 4, "baselines": 2}}
    result = baseline_scores(bundle, [image(), image(seed=1)], params=params, steps=4)
    rows = result.rows()
    assert [(r["method"], r["baseline"]) for r in rows] == [(m, b) for m in PATH_METHODS for b in BASELINES]
    assert all(0 <= r["deletion_auc"] <= 1 and 0 <= r["insertion_auc"] <= 1 for r in rows)
    preferred = result.preferred()
    for method in PATH_METHODS:
        mine = [r for r in rows if r["method"] == method]
        assert preferred[method]["deletion_auc"] == min(mine, key=lambda r: r["deletion_auc"])["baseline"]
        assert preferred[method]["insertion_auc"] == max(mine, key=lambda r: r["insertion_auc"])["baseline"]
    assert result.meta()["preferred"] == preferred
    with pytest.raises(ValueError, match="^baseline"):
        baseline_scores(bundle, [image()], baselines=("grey",))


def test_integrated_gradients_from_the_mean_colour_is_complete():
    """Attributions add up to S(x) − S(mean-colour image): the new baseline is the image's own mean."""
    bundle = cnn_bundle()
    (m,) = explain(bundle, image(), [("integrated_gradients", {"baseline": "mean", "tolerance": 0.001})], target=1)
    assert m.completeness_gap is not None and m.completeness_gap < 0.01
    (black,) = explain(bundle, image(), [("integrated_gradients", {"baseline": "black"})], target=1)
    assert not np.allclose(m.values, black.values)
