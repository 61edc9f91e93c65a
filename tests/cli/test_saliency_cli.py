"""`python -m glimpse methods` and `python -m glimpse saliency` (tiny model registered as a loader)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from glimpse.cli import main
from models import registry
from tests.glimpse.saliency.saliency_models import cnn_bundle, image


@pytest.fixture
def tiny_model(monkeypatch):
    monkeypatch.setitem(registry.LOADERS, "tiny-test:", lambda model_id, device: cnn_bundle())
    return "tiny-test:cnn"


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray(image(40, 48)).save(path)
    return path


def test_methods_lists_every_method(capsys):
    assert main(["methods", "--json"]) == 0
    infos = json.loads(capsys.readouterr().out)
    names = [i["name"] for i in infos]
    assert "integrated_gradients" in names and "gradcam" in names and len(names) == 24
    ig = infos[names.index("integrated_gradients")]
    assert ig["params"]["baseline"] == "black" and "blurred" in ig["choices"]["baseline"]
    assert main(["methods"]) == 0
    assert "occlusion" in capsys.readouterr().out


def test_saliency_writes_maps_at_image_size_and_a_summary(tiny_model, image_file, tmp_path, capsys):
    out = tmp_path / "maps.npz"
    argv = [
        "saliency", str(image_file), "--method", "gradient,gradcam,deeplift", "--model", tiny_model,
        "--target", "banana", "--contrast", "cherry", "--out", str(out), "-p", "deeplift.baseline=blurred",
    ]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [m["method"] for m in summary["maps"]] == ["gradient", "gradcam", "deeplift"]
    for m in summary["maps"]:
        assert m["target"] == 1 and m["contrast"] == 2 and m["target_label"] == "banana − cherry"
        assert m["min"] <= m["max"]
    assert summary["maps"][2]["completeness_gap"] < 0.01
    assert summary["maps"][2]["params"]["baseline"] == "blurred"
    with np.load(out) as npz:
        assert npz["gradient"].shape == (40, 48) and npz["gradcam"].dtype == np.float32
        params = json.loads(str(npz["params"]))
    assert params["maps"][1]["layer"] == "act2"
    assert np.isclose(params["maps"][0]["max"], summary["maps"][0]["max"])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--method", "nope"], "method: unknown 'nope'"),
        (["--method", "gradient", "--target", "kiwi"], "target: no class matches"),
        (["--method", "gradcam", "--layer", "fc9"], "layer: no module"),
        (["--method", "gradient", "-p", "gradient"], "--param: expected METHOD.NAME=VALUE"),
        (["--method", "occlusion", "-p", "occlusion.window=x"], "occlusion.window expects int"),
    ],
)
def test_user_errors_exit_2_with_one_line(tiny_model, image_file, capsys, extra, message):
    assert main(["saliency", str(image_file), "--model", tiny_model, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_missing_image_exits_2(tiny_model, tmp_path, capsys):
    assert main(["saliency", str(tmp_path / "none.png"), "--method", "gradient", "--model", tiny_model]) == 2
    assert "no such file" in capsys.readouterr().err
