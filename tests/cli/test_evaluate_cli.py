"""``python -m glimpse evaluate blockdigits``: the leakage table as text, JSON lines, CSV and JSON files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from glimpse.cli import main
from glimpse.evaluation.npz import load_evaluation_npz


def test_json_lines_csv_and_meta(tmp_path, capsys):
    args = ["evaluate", "blockdigits", "--method", "gradient,gradcam", "--images", "3", "--json"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["model"], r["method"]) for r in rows] == [
        ("blockdigits-standard", "gradient"),
        ("blockdigits-standard", "gradcam"),
        ("blockdigits-robust", "gradient"),
        ("blockdigits-robust", "gradcam"),
    ]
    for row in rows:
        assert 0 <= row["signal_mass"] <= 1 and list(row["null_topk"]) == ["2.5", "5", "10", "20", "30"]
        assert all(0 <= v <= 1 for v in row["null_topk"].values())
    with (tmp_path / "leakage.csv").open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4 and float(table[0]["null_top5"]) == pytest.approx(rows[0]["null_topk"]["5"])
    doc = json.loads((tmp_path / "leakage.json").read_text())
    assert [run["model_id"] for run in doc["runs"]] == ["blockdigits-standard", "blockdigits-robust"]
    arrays, meta = load_evaluation_npz((tmp_path / "leakage.npz").read_bytes())
    mass = arrays["blockdigits-standard.gradient.signal_mass"]
    assert mass.shape == (3,) and np.nanmean(mass) == pytest.approx(rows[0]["signal_mass"])
    assert arrays["blockdigits-robust.gradcam.null_topk"].shape == (3, 5)
    assert [run["model_id"] for run in meta["runs"]] == ["blockdigits-standard", "blockdigits-robust"]
    assert doc["runs"][0]["images"] == 3 and doc["runs"][0]["methods"][0]["method"] == "gradient"


def test_text_table_and_parameter_overrides(capsys):
    args = ["evaluate", "blockdigits", "--model", "blockdigits-robust", "--method", "occlusion", "--images", "2"]
    assert main([*args, "--param", "occlusion.window=16", "--param", "occlusion.stride=16"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["model", "method", "signal", "mass"] and "null@2.5%" in out[0]
    assert out[2].split()[:2] == ["blockdigits-robust", "occlusion"] and len(out) == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "nope"], "nope"),
        (["--images", "0"], "--images: between 1 and 359"),
        (["--model", "efficientnet-lite0", "--method", "gradient"], "takes 224x224"),
        (["--method", "gradient", "--param", "gradcam.x=1"], "--param: method 'gradcam'"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(capsys, extra, message):
    assert main(["evaluate", "blockdigits", "--images", "1", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_class_sensitivity_of_chosen_images(tmp_path, capsys):
    from PIL import Image

    from glimpse.evaluation.blockdigits import sample_images

    paths = []
    for i, pixels in enumerate(list(sample_images(2).values())):
        paths.append(tmp_path / f"digit{i}.png")
        Image.fromarray(pixels).save(paths[-1])
    args = ["evaluate", "class-sensitivity", *map(str, paths), "--model", "blockdigits-standard"]
    assert main([*args, "--method", "gradient,gradcam", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["method"] for r in rows] == ["gradient", "gradcam"]
    assert all(-1 <= r["class_sensitivity"] <= 1 and r["images"] == 2 for r in rows)
    assert main([*args, "--method", "gradient"]) == 0
    assert "lower is better" in capsys.readouterr().out


def test_masks_scores_each_image_against_its_mask(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from glimpse.evaluation.blockdigits import blockdigits

    data = blockdigits("test", seed=0)
    images, masks = [], []
    for i in range(2):
        images.append(tmp_path / f"digit{i}.png")
        masks.append(tmp_path / f"mask{i}.png")
        Image.fromarray(data.rgb(i)).save(images[-1])
        Image.fromarray(np.where(data.signal_masks()[i], 255, 0).astype(np.uint8)).save(masks[-1])
    args = ["evaluate", "masks", *map(str, images), "--masks", *map(str, masks), "--model", "blockdigits-standard"]
    assert main([*args, "--method", "gradient,occlusion", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["method"] for r in rows] == ["gradient", "occlusion"]
    for row in rows:
        assert 0 <= row["relevance_mass"] <= 1 and 0 <= row["topk_iou"] <= 1 and row["pointing_game"] in (0, 0.5, 1)
    assert main([*args[:-2], "--masks", str(masks[0])]) == 2
    assert "1 masks for 2 images" in capsys.readouterr().err


@pytest.mark.slow
def test_diffroar_writes_its_curve_table_and_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GLIMPSE_CACHE_DIR", str(tmp_path / "cache"))
    args = ["evaluate", "diffroar", "--model", "blockdigits-robust", "--levels", "0.3", "--seeds", "1"]
    assert main([*args, "--epochs", "1", "--json", "--out", str(tmp_path / "out")]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["model"], row["method"], row["k"]) == ("blockdigits-robust", "gradient", 0.3)
    assert row["diffroar"] == pytest.approx(row["accuracy_top"] - row["accuracy_bottom"])
    assert (tmp_path / "out" / "diffroar.png").read_bytes()[:4] == b"\x89PNG"
    arrays, _ = load_evaluation_npz((tmp_path / "out" / "diffroar.npz").read_bytes())
    top = arrays["blockdigits-robust.gradient.accuracy_top"]
    assert top.shape == (1, 1) and top[0, 0] == pytest.approx(row["accuracy_top"])
    assert list((tmp_path / "cache" / "diffroar").glob("diffroar-*.json"))  # the retrainings are kept


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "efficientnet-lite0"], "retrains BlockDigits CNNs"),
        (["--levels", "2"], "--levels: each a fraction"),
    ],
)
def test_diffroar_refuses_what_it_cannot_do(capsys, extra, message):
    assert main(["evaluate", "diffroar", *extra]) == 2
    assert message in capsys.readouterr().err


def test_pgi_prints_one_row_per_method_and_k(tmp_path, capsys):
    from PIL import Image

    from glimpse.evaluation.blockdigits import sample_images

    path = tmp_path / "digit.png"
    Image.fromarray(next(iter(sample_images(1).values()))).save(path)
    args = ["evaluate", "pgi", str(path), "--model", "blockdigits-robust", "--method", "gradient,gradcam"]
    assert main([*args, "--k", "0.25", "--draws", "4", "--segments", "12", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["method"], r["k"]) for r in rows] == [("gradient", 0.25), ("gradcam", 0.25)]
    assert all(0 <= r["pgi"] <= 1 and 0 <= r["pgu"] <= 1 for r in rows)
    assert main([*args, "--k", "1.5"]) == 2 and "--k: each a fraction" in capsys.readouterr().err


def test_shapes_scores_each_object_against_its_mask(capsys):
    assert main(["evaluate", "shapes", "--method", "gradcam,gradient", "--scenes", "4", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["model"], r["method"]) for r in rows] == [
        ("shapes-classifier", "gradcam"),
        ("shapes-classifier", "gradient"),
    ]
    assert all(0 <= r["relevance_mass"] <= 1 and 0 <= r["pointing_game"] <= 1 for r in rows)
    assert main(["evaluate", "shapes", "--scenes", "0"]) == 2 and "--scenes" in capsys.readouterr().err


def test_baselines_marks_the_baseline_each_metric_prefers(tmp_path, capsys):
    from PIL import Image

    from glimpse.evaluation.blockdigits import sample_images

    path = tmp_path / "digit.png"
    Image.fromarray(next(iter(sample_images(1).values()))).save(path)
    args = ["evaluate", "baselines", str(path), "--model", "blockdigits-standard", "--method", "deeplift"]
    assert main([*args, "--steps", "4", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["baseline"] for r in rows] == ["black", "blurred", "uniform", "mean"]
    assert sorted(m for r in rows for m in r["preferred_by"]) == ["deletion_auc", "insertion_auc"]
    assert main([*args[:-2], "--method", "gradcam"]) == 2 and "takes no baseline" in capsys.readouterr().err


@pytest.mark.slow
def test_inversion_prints_both_models_and_writes_the_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GLIMPSE_CACHE_DIR", str(tmp_path / "cache"))
    args = ["evaluate", "inversion", "--levels", "0.1", "--seeds", "1", "--retrain-epochs", "2"]
    assert main([*args, "--json", "--out", str(tmp_path / "out")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["model"], r["method"]) for r in rows] == [("standard", "gradient"), ("robust", "gradient")]
    assert rows[0]["diffroar"]["0.1"] < 0 < rows[1]["diffroar"]["0.1"]
    assert rows[0]["p_top_signal"] < rows[1]["p_top_signal"]
    assert (tmp_path / "out" / "inversion.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads((tmp_path / "out" / "inversion.json").read_text())
    assert doc["meta"]["benchmark"] == "feature-inversion" and len(doc["runs"]) == 2
    assert main(["evaluate", "inversion", "--eps", "3"]) == 2
    assert "--eps: a radius in (0, 1]" in capsys.readouterr().err
