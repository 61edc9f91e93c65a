"""The embedded shapes ViT: a ``transformers`` ViT folder that loads as ``hf:`` folders do, reads fresh scenes as
the CNN does (multi-label), and its transformer maps land on the object they explain. Its training script runs
(a few steps) and writes a folder that loads the same way."""

from __future__ import annotations

import json

import pytest

from glimpse.evaluation.shapes_masks import mask_benchmark
from glimpse.evaluation.shapes_scenes import OBJECTS
from models.registry import EMBEDDED_CLASSIFIERS, SHAPES_VIT, load_classifier
from models.shapes_classifier import LABELS
from tests.models.test_shapes_classifier import exact_sets


@pytest.fixture(scope="module")
def bundle():
    return load_classifier("shapes-vit", device="cpu")


def test_it_is_a_vit_that_names_every_shape_present_in_fresh_scenes(bundle):
    assert "shapes-vit" in EMBEDDED_CLASSIFIERS and bundle.multilabel and tuple(bundle.labels) == LABELS == OBJECTS
    assert bundle.kind == "vit" and (bundle.token_grid.height, bundle.token_grid.width) == (8, 8)
    assert bundle.lock.name == "shapes-vit" and bundle.model_id == "shapes-vit"
    assert exact_sets(bundle, 40) >= 38


def test_the_card_reports_what_eval_json_holds():
    report = json.loads((SHAPES_VIT / "EVAL.json").read_text())
    card = (SHAPES_VIT / "README.md").read_text()
    assert f"{100 * report['exact_set_accuracy']:.1f} %" in card
    assert f"{round(report['parameters'] / 1000)} k parameters" in card


def test_chefer_lands_on_the_object_and_rollout_less_often(bundle):
    # both of Chefer et al.'s rules (generic, and LRP): measured 0.94 pointing and 0.57 / 0.60 of the mass inside
    # the object on these 10 scenes, where an object covers 8 % of the scene on average (the mass chance gives)
    result = mask_benchmark(bundle, ["chefer", "chefer_lrp", "rollout"], scenes=10)
    rows = {r["method"]: r for r in result.rows()}
    for name in ("chefer", "chefer_lrp"):
        assert rows[name]["pointing_game"] >= 0.7 and rows[name]["relevance_mass"] > 0.4, name
        assert rows["rollout"]["relevance_mass"] < rows[name]["relevance_mass"], name


@pytest.mark.slow
def test_a_short_training_run_writes_a_folder_that_loads(tmp_path):
    from training.shapes_vit.train import main

    out = tmp_path / "vit"
    assert main(["--steps", "3", "--warmup", "1", "--batch-size", "8", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors", "preprocessor_config.json"}
    fresh = load_classifier(f"hf:{out}", device="cpu")
    assert fresh.multilabel and tuple(fresh.labels) == LABELS and fresh.kind == "vit"
