"""``python -m glimpse probe``: the pixel's value in every map equals the map array's value at the documented cell,
the words are ranked by attention, and the bundle it writes carries the probe."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from glimpse.cli import main
from glimpse.export import read_bundle
from glimpse.images import sample_images


def test_probe_json_equals_the_arrays_of_the_bundle(tmp_path, capsys):
    path = tmp_path / "coffee.png"
    Image.fromarray(sample_images()["coffee"][::8, ::8]).save(path)  # 50×75: not the model's input size
    bundle = tmp_path / "run.zip"
    args = ["probe", str(path), "--model", "shapes-classifier", "--method", "gradcam,gradient", "--xy", "60,7"]
    assert main([*args, "--json", "--out", str(bundle), "--device", "cpu"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert (found["x"], found["y"], found["image_width"], found["image_height"]) == (60, 7, 75, 50)
    run = read_bundle(bundle.read_bytes())
    assert [m["map"] for m in found["maps"]] == [e.name for e in run.maps]
    for row, entry in zip(found["maps"], run.maps):
        h, w = entry.values.shape
        r, c = min(h - 1, int((7 + 0.5) * h / 50)), min(w - 1, int((60 + 0.5) * w / 75))
        assert (row["row"], row["column"]) == (r, c) and row["value"] == float(entry.values[r, c]), entry.name
        values = np.asarray(entry.values, np.float64)
        assert row["percentile"] == pytest.approx(100 * np.mean(values <= row["value"]))
    assert [r["map"] for r in run.tables["probe"]] == [e.name for e in run.maps]


def test_probe_with_a_prompt_ranks_the_words_and_a_bad_pixel_is_one_line(capsys):
    args = ["probe", "--prompt", "a red circle", "--model", "shapes-classifier", "--steps", "2", "--device", "cpu"]
    assert main([*args, "--xy", "16,16", "--json"]) == 0
    words = json.loads(capsys.readouterr().out)["words"]
    assert sorted(w["word"] for w in words) == ["a", "circle", "red"]
    assert [w["value"] for w in words] == sorted((w["value"] for w in words), reverse=True)
    assert main([*args, "--xy", "40,2"]) == 2
    assert "outside the 32×32 image" in capsys.readouterr().err
    assert main([*args, "--xy", "4"]) == 2
    assert "--xy: expected two whole numbers" in capsys.readouterr().err


def test_candidates_add_the_diffusion_classifiers_error_difference_at_the_pixel(tmp_path, capsys):
    """With --candidate the image is also classified by the shapes model; its error-difference map is in the
    bundle and the probe reads it at the documented cell, like every other map."""
    from glimpse.diffusion_classifier import adapter_for, classify
    from glimpse.evaluation.shapes_scenes import parse_caption, render_scene
    from models.diffusion import load_pipeline

    scene = render_scene(parse_caption("a red circle to the left of a blue square"), np.random.default_rng(0))
    path = tmp_path / "scene.png"
    Image.fromarray(scene.image).save(path)
    bundle = tmp_path / "run.zip"
    prompts = ["a red circle to the left of a blue square", "a blue circle to the left of a red square"]
    args = ["probe", str(path), "--model", "shapes-classifier", "--method", "gradient", "--xy", "9,15"]
    args += [a for p in prompts for a in ("--candidate", p)]
    assert main([*args, "--dc-samples", "4", "--json", "--out", str(bundle), "--device", "cpu"]) == 0
    found = json.loads(capsys.readouterr().out)
    entry = next(e for e in read_bundle(bundle.read_bytes()).maps if e.kind == "diffusion classifier")
    assert entry.meta["winner"] == prompts[0] and entry.meta["runner_up"] == prompts[1]
    pipe = load_pipeline("shapes-t2i", device="cpu")
    expected = classify(adapter_for(pipe.pipe, pipe.model_id), scene.image, prompts, samples=4, seed=0)
    np.testing.assert_array_equal(entry.values, expected.difference_map())
    row = next(r for r in found["maps"] if r["kind"] == "diffusion classifier")
    h, w = entry.values.shape
    r, c = int((15 + 0.5) * h / 32), int((9 + 0.5) * w / 32)
    assert (row["row"], row["column"], row["value"]) == (r, c, float(entry.values[r, c]))
    assert main(["probe", str(path), "--xy", "1,1", "--candidate", prompts[0], "--device", "cpu"]) == 2
    assert "two or more prompts" in capsys.readouterr().err
