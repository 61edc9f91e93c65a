"""The faithfulness-against-complexity study (issue 28): the clutter scenes and their masks, the per-image rows
of the study task (equal to the metrics computed one by one), and the summary's correlations and intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from glimpse.evaluation.clutter import LEVELS, clutter_set, render_clutter
from glimpse.evaluation.shapes_scenes import COLOURS, OBJECTS
from glimpse.evaluation.study import bootstrap_spearman, summarise, write_plots


def test_clutter_grows_with_the_level_and_its_masks_are_the_visible_target():
    scenes = clutter_set(4, seed=3)
    assert [s.level for s in scenes] == [lv for lv in LEVELS for _ in range(4)]
    for s in scenes:
        assert s.image.shape == (32, 32, 3) and s.image.dtype == np.uint8
        assert len(s.objects) == s.level and OBJECTS[s.target] in s.objects
        colour = COLOURS[OBJECTS[s.target].split()[0]]
        assert s.mask.any() and (s.image[s.mask] == colour).all()  # the mask holds only the target's pixels
        assert s.mask.sum() == max(int(m.sum()) for m in s.masks)  # the largest visible object
    white = [s for s in scenes if s.level == 1]
    assert all(((s.image == 255).all(-1) | s.mask).all() for s in white)  # level 1: one object on white
    textured = [s for s in scenes if s.level == 6]
    assert all(len(np.unique(s.image.reshape(-1, 3), axis=0)) > 20 for s in textured)
    with pytest.raises(ValueError, match="levels are 1..6"):
        render_clutter(7, np.random.default_rng(0))
    assert np.array_equal(clutter_set(1, seed=5)[3].image, clutter_set(1, seed=5)[3].image)


def test_bootstrap_spearman_gives_rho_inside_its_interval():
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    y = x + rng.normal(scale=0.5, size=60)
    rho, low, high, n = bootstrap_spearman(x, y, resamples=300, seed=1)
    assert n == 60 and low < rho < high and 0.6 < rho < 1
    assert bootstrap_spearman(x, y, resamples=300, seed=1) == (rho, low, high, n)  # seeded
    assert math.isnan(bootstrap_spearman([1, 2], [2, 1])[0])  # too few images


def test_the_bootstrap_ranks_every_resample_at_once_as_spearman_ranks_one():
    """The resamples scored row by row (spearman_rows) give each resample's spearman, ties and constants included."""
    from glimpse.map_metrics import spearman, spearman_rows

    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 4, size=15).astype(float), rng.normal(size=15)  # ties in x
    idx = rng.integers(0, 15, size=(300, 15))
    loop = np.array([spearman(x[i], y[i]) for i in idx])
    np.testing.assert_allclose(spearman_rows(x[idx], y[idx]), loop, rtol=0, atol=1e-12, equal_nan=True)
    assert np.isnan(spearman_rows(np.ones((1, 5)), y[None, :5])).all()
    rho, low, high, _ = bootstrap_spearman(x, y, resamples=300, seed=4)
    draws = np.array([spearman(x[i], y[i]) for i in np.random.default_rng(4).integers(0, 15, size=(300, 15))])
    draws = draws[np.isfinite(draws)]
    assert (low, high) == pytest.approx(tuple(np.quantile(draws, [0.025, 0.975])), abs=1e-12)


def test_the_summary_correlates_each_metric_with_each_feature_and_bins_it():
    rng = np.random.default_rng(0)
    msg = rng.uniform(size=40)
    frame = pd.DataFrame({"path": [f"{i}.png" for i in range(40)], "error": [None] * 40, "MSG": msg,
                          "edge_density": rng.uniform(size=40), "gradcam_pointing_game": (msg < 0.5).astype(float),
                          "gradcam_deletion_auc": msg + rng.normal(scale=0.1, size=40)})  # fmt: skip
    summary = summarise(frame, ["gradcam"], resamples=200, bins=4)
    pg = summary.get("MSG", "gradcam", "pointing_game")
    assert pg.rho < -0.5 and pg.high < 0 and pg.n == 40
    assert summary.get("MSG", "gradcam", "deletion_auc").low > 0.5
    bins = [b for b in summary.bins if (b.feature, b.metric) == ("MSG", "pointing_game")]
    assert [b.n for b in bins] == [10, 10, 10, 10] and bins[0].mean == 1.0 and bins[-1].mean == 0.0
    assert summary.meta()["bootstrap"]["resamples"] == 200 and len(summary.rows()) == 4
    with pytest.raises(ValueError, match="not in the table"):
        summarise(frame, ["gradcam"], features=("MUC9",))


def test_the_study_task_rows_equal_the_metrics_one_by_one(tmp_path):
    """Two clutter scenes through the task: complexity as complexity_batch gives it, AUCs as
    deletion_insertion gives them, agreement as spearman, pointing game and mass as the localisation module."""
    from glimpse.batch import list_inputs, read_rows, run_batch
    from glimpse.batch.study import StudyTask, write_clutter
    from glimpse.complexity import complexity_batch
    from glimpse.evaluation.deletion import deletion_insertion
    from glimpse.evaluation.localisation import pointing_game, relevance_mass
    from glimpse.evaluation.masks import load_mask
    from glimpse.images import load_image
    from glimpse.map_metrics import spearman
    from glimpse.saliency import explain
    from models.registry import load_classifier

    images, masks, targets = write_clutter(tmp_path / "in", per_level=1, seed=0)
    items = [i for i in list_inputs(str(images)) if i.key in ("L1-001.png", "L5-001.png")]
    methods = ("gradcam", "gradient")
    task = StudyTask(model_id="shapes-classifier", methods=methods, out=str(tmp_path / "out"), loader=load_classifier,
                     steps=5, masks=str(masks), targets=targets)  # fmt: skip
    run_batch(task, items, tmp_path / "out")
    rows = read_rows(tmp_path / "out").set_index("path")
    bundle = load_classifier("shapes-classifier")
    for key in ("L1-001.png", "L5-001.png"):
        row = rows.loc[key]
        image = load_image((images / key).read_bytes())
        mask = load_mask(masks / key, image.shape[:2])
        assert pd.isna(row["error"]) and row["has_mask"] and row["target"] == targets[key]
        feats = complexity_batch([image], edges=True)[0].record()
        # complexity_batch of two images against one: equal to the last bits (batched sums)
        assert row["MSG"] == pytest.approx(feats["MSG"], rel=1e-12) and row["edge_density"] == feats["edge_density"]
        maps = explain(bundle, image, list(methods), target=targets[key])
        probability = dict((i, p) for i, _, p in bundle.predict(image, top=len(bundle.labels)))[targets[key]]
        assert row["target_probability"] == pytest.approx(probability, rel=1e-5)
        assert row["gradcam__gradient_spearman"] == pytest.approx(spearman(maps[0].values, maps[1].values))
        for m in maps:
            curve = deletion_insertion(bundle, image, m.values, target=m.target.index, steps=5)
            assert row[f"{m.method}_deletion_auc"] == pytest.approx(curve.deletion_auc, abs=1e-6)
            assert row[f"{m.method}_insertion_auc"] == pytest.approx(curve.insertion_auc, abs=1e-6)
            values = m.at_size(*image.shape[:2])
            assert row[f"{m.method}_pointing_game"] == float(pointing_game(values, mask))
            assert row[f"{m.method}_relevance_mass"] == pytest.approx(relevance_mass(values, mask))
    summary = summarise(rows.reset_index(), list(methods), resamples=50)
    assert {c.metric for c in summary.correlations} >= {"pointing_game", "relevance_mass", "deletion_auc"}
    assert summary.get("MSG", "model", "target_probability").n == 2
    plots = write_plots(rows.reset_index(), summary, tmp_path / "plots")
    assert [p.name for p in plots] == ["scatter_MSG.png", "binned_MSG.png"] and all(
        p.stat().st_size > 1000 for p in plots
    )
