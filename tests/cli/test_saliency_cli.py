"""`python -m glimpse methods` and `python -m glimpse saliency` (tiny model registered as a loader)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from glimpse.cli import main
from glimpse.export import read_bundle
from glimpse.saliency import Target
from glimpse.saliency.npz import ImageRef, read_npz
from models import registry
from tests.tiny_models import cnn_bundle, image


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
    assert "integrated_gradients" in names and "gradcam" in names and len(names) == 29
    assert {i["name"] for i in infos if i["models"] == "vit"} == {
        "rollout",
        "chefer",
        "chefer_lrp",
        "legrad",
        "attnlrp",
    }
    ig = infos[names.index("integrated_gradients")]
    assert ig["params"]["baseline"] == "black" and "blurred" in ig["choices"]["baseline"]
    assert main(["methods"]) == 0
    listed = capsys.readouterr().out
    assert "occlusion" in listed
    for name in ("legrad", "chefer_lrp", "attnlrp"):
        assert next(line for line in listed.splitlines() if line.startswith(name + " ")).endswith("models: vit")


def test_methods_list_randomness_units_and_the_activation_assumption(capsys):
    from glimpse.saliency import REGISTRY, method_units

    assert main(["methods", "--json"]) == 0
    infos = {i["name"]: i for i in json.loads(capsys.readouterr().out)}
    assert infos.keys() == REGISTRY.keys()
    for name, method in REGISTRY.items():
        info = infos[name]
        assert info["stochastic"] is method.info.stochastic
        assert info["units"] == method_units(name) and info["units"]
        assert info["assumes_nonnegative_activations"] is method.info.assumes_nonnegative_activations
    assert infos["gradient"]["units"] == "∂S/∂x" and infos["rise"]["stochastic"]
    assert infos["gradcampp"]["assumes_nonnegative_activations"]
    assert main(["methods"]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    for name, method in REGISTRY.items():
        assert ("random" in lines[name]) is method.info.stochastic, name
    assert lines["gradcam"][-1] == "layer" and lines["rise"][-2:] == ["slow", "random"]
    # occlusion's window scales with the model input: the listed 32/16 are for 224 px, and the list says so
    assert lines["occlusion"][-2:] == ["slow", "scaled"] and infos["occlusion"]["params_scale_with_input"]
    assert not infos["rise"]["params_scale_with_input"]


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
    assert summary["out"] == str(out)
    # Glimpse's saliency NPZ: raw maps at the model input, the image's name, digest and size in ``meta``
    saved = read_npz(out)
    assert saved.image == ImageRef.of(image(40, 48), "img.png")
    assert [m.method for m in saved.maps] == ["gradient", "gradcam", "deeplift"]
    assert saved.maps[0].values.shape == (32, 32) == tuple(summary["maps"][0]["shape"])
    assert saved.maps[1].layer == "act2" and saved.maps[2].param_dict["baseline"] == "blurred"
    assert saved.maps[0].target == Target(1, 2) and saved.maps[0].target_label == "banana − cherry"
    assert np.isclose(saved.maps[0].values.max(), summary["maps"][0]["max"])
    assert saved.at_image_size()["gradient"].shape == (40, 48)
    with np.load(out, allow_pickle=False) as npz:  # plain numpy reads it too
        assert npz["gradcam"].dtype == np.float32 and json.loads(str(npz["meta"]))["format"] == "glimpse-saliency"


def test_a_noise_tunnel_is_reported_apart_from_the_params(tiny_model, image_file, tmp_path, capsys):
    out = tmp_path / "maps.npz"
    argv = ["saliency", str(image_file), "-m", "gradient", "--model", tiny_model, "--target", "banana"]
    assert main([*argv, "--noise-tunnel", "vargrad:2:0.1", "--out", str(out)]) == 0
    (m,) = json.loads(capsys.readouterr().out)["maps"]
    assert m["params"] == {} and m["noise_tunnel"] == {"kind": "vargrad", "noise": 0.1, "samples": 2}
    assert read_npz(out).maps[0].noise_tunnel == (("kind", "vargrad"), ("noise", 0.1), ("samples", 2))


def test_cli_file_and_bundle_saliency_npz_are_one_format(tiny_model, image_file, tmp_path, capsys):
    """`saliency --out` and `report` (its bundle's saliency.npz) write the same format and the same maps."""
    out, bundle = tmp_path / "maps.npz", tmp_path / "run.zip"
    assert main(["saliency", str(image_file), "-m", "gradient,gradcam", "--model", tiny_model, "--out", str(out)]) == 0
    assert (
        main(["report", str(image_file), "--methods", "gradient,gradcam", "--model", tiny_model, "--out", str(bundle)])
        == 0
    )
    capsys.readouterr()
    with zipfile.ZipFile(bundle) as zf:
        inner = zf.read("saliency.npz")
    cli, run = read_npz(out), read_npz(inner)
    assert cli.image == run.image  # name, full digest and size of the same image
    with np.load(out) as a, np.load(io.BytesIO(inner)) as b:
        assert sorted(a.files) == sorted(b.files) == ["gradcam", "gradient", "meta"]
        meta_a, meta_b = json.loads(str(a["meta"])), json.loads(str(b["meta"]))
    for key in ("format", "version", "image"):
        assert meta_a[key] == meta_b[key]
    for x, y in zip(meta_a["maps"], meta_b["maps"]):
        assert x.keys() == y.keys()
        assert {k: v for k, v in x.items() if k != "seconds"} == {k: v for k, v in y.items() if k != "seconds"}
    for x, y in zip(cli.maps, run.maps):
        np.testing.assert_array_equal(x.values, y.values)
    # and the bundle's record keeps the same metadata for its saliency maps
    record = read_bundle(bundle)
    assert [e.meta["method"] for e in record.maps if e.kind == "saliency"] == ["gradient", "gradcam"]


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


def test_the_default_methods_are_those_that_apply_to_the_model():
    """No --method: every method for any model (the ViT-only ones are asked for by name), or, given the loaded
    model, every method that applies to it."""
    from glimpse.cli import parse_methods
    from tests.tiny_models import cnn_bundle, hf_vit_bundle

    assert "legrad" not in parse_methods(None) and "gradient" in parse_methods(None)
    assert "legrad" not in parse_methods(None, bundle=cnn_bundle())
    assert {"rollout", "chefer", "legrad"} <= set(parse_methods(None, quick=True, bundle=hf_vit_bundle()))
    assert parse_methods("legrad,gradient") == ["legrad", "gradient"]
