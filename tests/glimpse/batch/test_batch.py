"""Whole data sets: inputs of every kind, rows equal to the per-image functions, error rows, resume, and the
same values on a local Ray runtime (2 CPUs) as in-process."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from glimpse.batch import ComplexityTask, SaliencyTask, list_inputs, read_rows, run_batch
from glimpse.cli import main
from glimpse.complexity import complexity_features
from glimpse.images import sample_images
from glimpse.saliency import explain
from glimpse.saliency.npz import read_npz
from models.registry import load_classifier

NAMES = ("astronaut", "coffee", "chelsea", "rocket")  # odd positions go to sub/


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    (root / "sub").mkdir()
    for k, name in enumerate(NAMES):
        Image.fromarray(sample_images()[name][::4, ::4]).save(root / ("sub" if k % 2 else ".") / f"{name}.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (root / "notes.txt").write_text("not an image")
    return root


KEYS = ["astronaut.png", "broken.jpg", "chelsea.png", "sub/coffee.png", "sub/rocket.png"]


def pixels(folder: Path, key: str) -> np.ndarray:
    return np.asarray(Image.open(folder / key).convert("RGB"))


# --------------------------------------------------------------------------------------------- inputs
def test_inputs_from_a_folder_zip_table_glob_and_file(folder, tmp_path):
    assert [i.key for i in list_inputs(folder)] == KEYS
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for key in KEYS:
            zf.write(folder / key, key)
        zf.writestr("readme.md", "x")
    zipped = list_inputs(archive)
    assert [i.key for i in zipped] == KEYS and zipped[0].read() == (folder / KEYS[0]).read_bytes()
    table = tmp_path / "paths.csv"
    pd.DataFrame({"file": [str(folder / "chelsea.png"), "missing.png"]}).to_csv(table, index=False)
    listed = list_inputs(table, column="file")
    assert [i.key for i in listed] == [str(folder / "chelsea.png"), "missing.png"]
    assert listed[1].source == str(tmp_path / "missing.png")  # relative: next to the table
    with pytest.raises(ValueError, match="no column 'path'; columns: file"):
        list_inputs(table)
    assert [i.key for i in list_inputs(str(folder / "**" / "*.png"))] == sorted(
        str(folder / k) for k in KEYS if k.endswith(".png")
    )
    assert [i.key for i in list_inputs(folder / "chelsea.png")] == ["chelsea.png"]
    with pytest.raises(ValueError, match="is not a folder, zip"):
        list_inputs(tmp_path / "nowhere")


def test_an_unsafe_zip_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../outside.png", b"x")
    with pytest.raises(ValueError, match="unsafe member name"):
        list_inputs(archive)


# --------------------------------------------------------------------------------------------- in-process
def test_complexity_rows_equal_the_per_image_features_and_a_corrupt_image_is_an_error_row(folder, tmp_path):
    report = run_batch(ComplexityTask(), list_inputs(folder), tmp_path / "out", batch_size=2)
    assert (report.images, report.written, report.errors, report.skipped) == (5, 5, 1, 0)
    rows = read_rows(tmp_path / "out")
    assert rows["path"].tolist() == KEYS
    broken = rows.set_index("path").loc["broken.jpg"]
    assert broken["error"] == "image: broken.jpg is not an image format Pillow can read" and np.isnan(broken["MSG"])
    for key in KEYS:
        if key == "broken.jpg":
            continue
        row = rows.set_index("path").loc[key]
        image = pixels(folder, key)
        assert pd.isna(row["error"]) and (row["height"], row["width"]) == image.shape[:2]
        for name, value in complexity_features(image).record().items():
            assert row[name] == value, (key, name)


def test_resume_adds_only_the_missing_rows(folder, tmp_path):
    items = list_inputs(folder)
    out = tmp_path / "out"
    run_batch(ComplexityTask(), items[:2], out)
    with pytest.raises(ValueError, match="already holds rows; pass --resume"):
        run_batch(ComplexityTask(), items, out)
    report = run_batch(ComplexityTask(), items, out, resume=True)
    assert (report.skipped, report.written) == (2, 3)
    assert read_rows(out)["path"].tolist() == KEYS
    again = run_batch(ComplexityTask(), items, out, resume=True)
    assert again.written == 0 and len(read_rows(out)) == 5


def test_the_command_line(folder, tmp_path, capsys):
    assert main(["batch", "complexity", str(folder), "--out", str(tmp_path / "o"), "--no-edges"]) == 0
    assert "5 rows written" in capsys.readouterr().out
    assert "edge_density" not in read_rows(tmp_path / "o").columns
    assert main(["batch", "complexity", str(tmp_path / "nothing"), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: input:") and err.count("\n") == 1
    assert main(["batch", "saliency", str(folder), "--out", str(tmp_path / "q"), "--model", "no-such-model"]) == 2


# --------------------------------------------------------------------------------------------- Ray
def saliency_task(out: Path) -> SaliencyTask:
    return SaliencyTask(
        model_id="efficientnet-lite0", methods=("gradient", "gradcam"), out=str(out), loader=load_classifier, threads=1
    )


@pytest.mark.slow
def test_ray_gives_the_in_process_values(folder, tmp_path, local_ray):
    items = list_inputs(folder)
    for make in (lambda out: ComplexityTask(threads=1), saliency_task):
        here, there = tmp_path / f"here-{make.__name__}", tmp_path / f"ray-{make.__name__}"
        run_batch(make(here), items, here, batch_size=2)
        report = run_batch(make(there), items, there, batch_size=2, ray=local_ray, workers=2)
        assert (report.written, report.errors) == (5, 1)
        a, b = read_rows(here), read_rows(there)
        assert list(a.columns) == list(b.columns) and a["path"].tolist() == KEYS
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    # the maps themselves, bit for bit, and equal to explain() on the image
    bundle = load_classifier("efficientnet-lite0", device="cpu")
    for key, npz in read_rows(there).dropna(subset=["maps_npz"])[["path", "maps_npz"]].itertuples(index=False):
        ours = read_npz((there / npz).read_bytes())
        twin = read_npz((tmp_path / "here-saliency_task" / npz).read_bytes())
        assert ours.image.name == key
        for m, t in zip(ours.maps, twin.maps):
            assert np.array_equal(m.values, t.values), (key, m.method)
        if key == "chelsea.png":
            ref = explain(bundle, pixels(folder, key), ["gradient", "gradcam"])
            assert [r.method for r in ref] == [m.method for m in ours.maps]


@pytest.mark.slow
def test_resume_on_ray_adds_only_the_missing_rows(folder, tmp_path, local_ray):
    items = list_inputs(folder)
    out = tmp_path / "out"
    run_batch(ComplexityTask(), items[1:3], out, ray=local_ray)
    report = run_batch(ComplexityTask(), items, out, resume=True, ray=local_ray, workers=2)
    assert (report.skipped, report.written) == (2, 3)
    assert read_rows(out)["path"].tolist() == KEYS


@pytest.mark.slow
def test_evaluate_rows_are_the_deletion_and_insertion_aucs_on_ray_and_here(folder, tmp_path, local_ray):
    """The task scores every map of a batch's images in one deletion_curves call per curve kind: each AUC is the
    one deletion_insertion gives that map alone (to float32 rounding)."""
    from glimpse.batch import EvaluateTask
    from glimpse.evaluation.deletion import deletion_insertion

    methods = ("gradient", "gradcam")

    def task():
        return EvaluateTask(
            steps=5, model_id="blockdigits-standard", methods=methods, out="", loader=load_classifier, threads=1
        )

    items = [i for i in list_inputs(folder) if i.key in ("broken.jpg", "chelsea.png", "sub/coffee.png")]
    run_batch(task(), items, tmp_path / "here")
    run_batch(task(), items, tmp_path / "ray", ray=local_ray)
    here, there = read_rows(tmp_path / "here"), read_rows(tmp_path / "ray")
    pd.testing.assert_frame_equal(here, there, check_exact=True)
    bundle = load_classifier("blockdigits-standard", device="cpu")
    for key in ("chelsea.png", "sub/coffee.png"):
        row = here.set_index("path").loc[key]
        image = pixels(folder, key)
        for m in explain(bundle, image, list(methods)):
            curve = deletion_insertion(bundle, image, m.values, target=m.target.index, steps=5)
            assert row[f"{m.method}_deletion_auc"] == pytest.approx(curve.deletion_auc, rel=1e-5, abs=1e-7)
            assert row[f"{m.method}_insertion_auc"] == pytest.approx(curve.insertion_auc, rel=1e-5, abs=1e-7)
    assert here.set_index("path").loc["broken.jpg", "error"].startswith("image: broken.jpg")


def test_an_image_too_small_to_score_is_an_error_row_naming_its_path(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / "dot.png")
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(folder / "ok.png")
    run_batch(ComplexityTask(edges=False), list_inputs(folder), tmp_path / "out", batch_size=2)
    rows = read_rows(tmp_path / "out").set_index("path")
    assert rows.loc["dot.png", "error"] == "dot.png: needs at least 8x8 pixels for the 1/8 scale, got 4x4"
    assert pd.isna(rows.loc["ok.png", "error"])
