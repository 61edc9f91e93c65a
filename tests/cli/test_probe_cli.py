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
