"""``python -m glimpse diffusion-classify``: the JSON the issue names, files, pruning and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from glimpse.cli import main
from glimpse.npzfile import read


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from glimpse.evaluation.shapes_scenes import HELD_OUT_SPECS, render_scene

    spec = next(s for s in HELD_OUT_SPECS if s.objects[0].shape != s.objects[1].shape)  # five hard negatives
    path = tmp_path_factory.mktemp("scene") / "scene.png"
    Image.fromarray(render_scene(spec, np.random.default_rng(3)).image).save(path)
    return path, spec.text


@pytest.mark.slow
def test_json_names_the_prediction_and_every_prompts_scores(scene, tmp_path, capsys):
    path, caption = scene
    args = ["diffusion-classify", str(path), "-p", caption, "--negatives", "--samples", "8"]
    assert main([*args, "--json", "--out", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["prediction"] == caption and doc["denoiser_calls"] == 8
    assert [p["prompt"] for p in doc["prompts"]][0] == caption and len(doc["prompts"]) == 6
    assert all({"mean_error", "probability"} <= set(p) for p in doc["prompts"])
    assert sum(p["probability"] for p in doc["prompts"]) == pytest.approx(1.0)
    arrays, meta = read((tmp_path / "errors.npz").read_bytes(), format="glimpse-diffusion-classifier", versions=(1,))
    assert arrays["errors"].shape == (6, 8) and arrays["difference"].shape == (32, 32)
    assert meta["prompts"][0] == caption
    assert (tmp_path / "difference.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "classification.json").read_text())["prediction"] == caption


@pytest.mark.slow
def test_a_template_and_pruning_as_a_table(scene, capsys):
    path, _ = scene
    args = ["diffusion-classify", str(path), "--template", "a {colour} {shape}", "--samples", "2,6", "--keep", "3,1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("prompt") and "prediction: a " in out
    assert "(" in out.splitlines()[-1] and out.count("\n") == 12 + 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-p", "a red circle"], "at least two candidates"),
        (["-p", "a red circle", "-p", "a purple hexagon"], "unknown words"),
        (["-p", "a dog", "--negatives"], "no hard negatives"),
        (["-p", "a red circle", "-p", "a blue circle", "--samples", "4,2"], "samples"),
        (["-p", "a red circle", "-p", "a blue circle", "--samples", "2,4", "--keep", "1"], "--keep"),
        (["--template", "a {animal}"], "slots"),
    ],
)
def test_bad_candidates_and_settings_get_one_line(scene, capsys, extra, message):
    path, _ = scene
    assert main(["diffusion-classify", str(path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
