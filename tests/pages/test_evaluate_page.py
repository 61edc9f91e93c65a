"""The Evaluate page: BlockDigits leakage for chosen models and methods, table, chart, downloads and maps."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from components import jobs
from components.evaluate import TAB_KEY, TABS, diffroar, leakage, perturbation
from components.evaluate import masks as masks_module
from tests.apptest_support import open_page, stored


def open_tab(name: str):
    """The Evaluate page with tab ``name`` open (only the open tab runs)."""
    at = open_page("app_pages/evaluate.py")
    if name != TABS[0]:
        at.session_state[TAB_KEY] = name
        at.run()
    assert not at.exception, at.exception
    return at


def press(at, label: str, **run) -> None:
    """Click the button labelled ``label`` and run the page."""
    next(b for b in at.button if b.label == label).click()
    at.run(**run)


def table(at, column: str):
    """The first data frame the page shows with ``column``."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def upload_tab(tab: str, prefix: str, model: str, images: int):
    """Tab ``tab`` on ``model``, with ``images`` BlockDigits samples in the uploader ``{prefix}_images`` and
    Gradient and Grad-CAM in ``{prefix}_methods`` (not run yet)."""
    from glimpse.evaluation.blockdigits import sample_images

    at = open_tab(tab)
    at.sidebar.selectbox(key="glimpse_embedded_pick").select(model).run()
    uploads = [(f"{i}.png", _png(p), "image/png") for i, p in enumerate(sample_images(images).values())]
    at.file_uploader(key=f"{prefix}_images").set_value(uploads)
    at.multiselect(key=f"{prefix}_methods").set_value(["gradient", "gradcam"])
    return at


def test_run_scores_every_model_and_method_and_shows_the_maps():
    jobs.forget_steps()
    at = open_page("app_pages/evaluate.py")
    assert at.info and "Run" in at.info[0].value
    at.multiselect(key="eval_methods").set_value(["gradient", "gradcam"])
    at.slider(key="eval_images").set_value(20)
    at.run()
    # before it starts, what it will cost: two batches of 10 images per model, in seconds on this machine
    assert any(c.value.startswith("**Cost:** 4 batches, ") and "on this machine" in c.value for c in at.caption)
    press(at, "Run")
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["model"]) == ["blockdigits-standard"] * 2 + ["blockdigits-robust"] * 2
    assert list(table["method"]) == ["Gradient", "Grad-CAM"] * 2
    assert table["null top 5 %"].between(0, 100).all() and table["signal mass %"].between(0, 100).all()
    request, results = stored(at, leakage.RESULT_KEY)
    assert request.images == 20 and [r.images for r in results] == [20, 20]
    # the merged batches are the one-call result
    whole = leakage.leakage_benchmark(
        leakage_bundle_model("blockdigits-robust"),
        leakage.blockdigits("test", seed=0),
        ["gradient", "gradcam"],
        images=20,
    )
    np.testing.assert_array_equal(results[1].methods[0].null_topk, whole.methods[0].null_topk)
    # CSV of the table, JSON with each run's meta(), NPZ of every image's scores, the run bundle
    assert len(at.get("download_button")) == 4
    # one image, every map: the image and one overlay per method, for each model
    assert len(at.get("image")) == 2 * (1 + 2)
    # a display change (k) re-draws without recomputing
    at.select_slider(key="eval_k").set_value("20").run()
    assert not at.exception and stored(at, leakage.RESULT_KEY)[1] is results
    # the models are pills, whose names are never cut ("blockdigits-r…" in a multiselect's chips)
    assert at.pills(key="eval_models").value == ["blockdigits-standard", "blockdigits-robust"]
    # the Run button is enabled again after the job (the run that worked drew it disabled)
    assert not next(b for b in at.button if b.label == "Run").disabled


def leakage_bundle_model(model_id: str):
    from components import loaders

    return loaders.classifier(model_id, "cpu")


@pytest.mark.slow
def test_diffroar_tab_draws_the_curve_of_a_small_run(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIMPSE_CACHE_DIR", str(tmp_path))
    jobs.forget_steps()
    at = open_tab(TABS[1])
    at.pills(key="roar_models").set_value(["blockdigits-robust"])  # pills: a multiselect cut the names
    at.multiselect(key="roar_levels").set_value([0.3])
    at.slider(key="roar_seeds").set_value(1)
    at.slider(key="roar_epochs").set_value(2)
    at.run()
    assert any("**Cost:** 2 steps" in c.value and "2 retrainings of a BlockDigits CNN" in c.value for c in at.caption)
    press(at, "Run DiffROAR")
    assert not at.exception, at.exception
    _, (result,) = stored(at, diffroar.ROAR_KEY)
    assert (
        result.model_id == "blockdigits-robust" and result.levels == (0.3,) and result.accuracy["top"].shape == (1, 1)
    )
    frame = table(at, "diffroar")
    assert frame["diffroar"].iloc[0] == pytest.approx(result.diffroar[0, 0])


@pytest.mark.slow
def test_the_synthetic_check_shows_the_papers_sign(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIMPSE_CACHE_DIR", str(tmp_path))
    jobs.forget_steps()
    at = open_tab(TABS[1])
    at.multiselect(key="inv_levels").set_value([0.1])
    at.slider(key="inv_seeds").set_value(1)
    at.run()
    press(at, "Run the synthetic check", timeout=120)
    assert not at.exception, at.exception
    _, result = stored(at, diffroar.INVERSION_KEY)
    standard, robust = result.models
    assert standard.curve.levels == (0.1,) and standard.curve.diffroar[0, 0] < 0 < robust.curve.diffroar[0, 0]
    frame = table(at, "P[top = signal]")
    assert list(frame["model"]) == ["standard", "robust"]
    assert frame["P[top = signal]"].iloc[0] < 0.1 < 0.7 < frame["P[top = signal]"].iloc[1]
    assert (frame["accuracy"] > 0.95).all()  # both networks learned the task at the defaults


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_masks_tab_scores_uploaded_pairs_and_explains_a_mismatch():
    from glimpse.evaluation.blockdigits import blockdigits

    data = blockdigits("test", seed=0)
    at = open_tab(TABS[3])
    at.sidebar.selectbox(key="glimpse_embedded_pick").select("blockdigits-standard").run()
    images = [(f"d{i}.png", _png(data.rgb(i)), "image/png") for i in range(2)]
    masks = [
        (f"m{i}.png", _png(np.where(data.signal_masks()[i], 255, 0).astype(np.uint8)), "image/png") for i in range(2)
    ]
    at.file_uploader(key="mask_images").set_value(images)
    at.file_uploader(key="mask_masks").set_value(masks)
    at.multiselect(key="mask_methods").set_value(["gradient", "gradcam"])
    at.run()
    press(at, "Score against the masks")
    assert not at.exception and not at.error, [e.value for e in at.error]
    frame = table(at, "relevance_mass")
    assert list(frame["method"]) == ["Gradient", "Grad-CAM"] and frame["relevance_mass"].between(0, 1).all()
    # masks in one zip pair the same way (by their paths inside it)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, _ in masks:
            zf.writestr(f"masks/{name}", data)
    at.file_uploader(key="mask_masks").set_value([("masks.zip", buf.getvalue(), "application/zip")])
    at.run()
    press(at, "Score against the masks")
    assert not at.exception and not at.error, [e.value for e in at.error]
    zipped = table(at, "relevance_mass")
    assert zipped.equals(frame)
    at.file_uploader(key="mask_masks").set_value([("m0.png", _png(np.zeros((8, 8), np.uint8)), "image/png")])
    at.run()
    assert any("2 images but 1 masks" in e.value for e in at.error)
    assert next(b for b in at.button if b.label == "Score against the masks").disabled
    # a mask of another size than its image: named, and the previous scores go (not read as this run's)
    at.file_uploader(key="mask_masks").set_value([masks[0], ("m1.png", _png(np.zeros((8, 8), np.uint8)), "image/png")])
    at.run()
    press(at, "Score against the masks")
    assert not at.exception
    assert any(e.value.startswith("Cannot score: m1.png (for d1.png)") for e in at.error), [e.value for e in at.error]
    assert stored(at, masks_module.MASKS_KEY) is None


def test_shapes_tab_scores_the_shapes_classifier_against_object_masks():
    jobs.forget_steps()
    at = open_tab(TABS[2])
    at.multiselect(key="shape_methods").set_value(["gradcam"])
    at.slider(key="shape_scenes").set_value(5)
    press(at, "Score the shapes classifier")
    assert not at.exception and not at.error
    _, result = stored(at, masks_module.SHAPES_KEY)
    assert result.model_id == "shapes-classifier" and len(result.names) >= 5
    frame = table(at, "pointing_game")
    assert list(frame["method"]) == ["Grad-CAM"] and 0 <= frame["pointing_game"].iloc[0] <= 1


def test_class_sensitivity_tab_over_uploaded_images():
    at = upload_tab(TABS[4], "sens", "blockdigits-robust", 3)
    at.run()
    press(at, "Measure class sensitivity")
    assert not at.exception and not at.error, [e.value for e in at.error]
    frame = table(at, "class sensitivity (ρ)")
    assert list(frame["method"]) == ["Gradient", "Grad-CAM"] and list(frame["images"]) == [3, 3]
    assert frame["class sensitivity (ρ)"].between(-1, 1).all()


def test_the_run_bundle_holds_the_table_the_maps_and_how_they_were_made():
    from glimpse.export import read_bundle

    request = leakage.Request(("blockdigits-standard", "blockdigits-robust"), ("gradient", "gradcam"), 10, 0, "cpu")
    results = leakage.results_of(request)
    data = leakage.leakage_bundle(request, results, 3)
    record = read_bundle(data)
    assert record.image.shape == (64, 32, 3) and record.image_name.startswith("blockdigits test #3")
    assert record.map_names == (
        "blockdigits-standard: Gradient",
        "blockdigits-standard: Grad-CAM",
        "blockdigits-robust: Gradient",
        "blockdigits-robust: Grad-CAM",
    )
    rows = record.tables["leakage"]
    assert len(rows) == 4 and rows[0]["model"] == "blockdigits-standard" and 0 <= rows[0]["null_top5"] <= 1
    section = record.params["evaluation"]
    assert section["benchmark"] == "blockdigits-leakage" and [r["images"] for r in section["runs"]] == [10, 10]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert "report.html" in zf.namelist() and "metrics/leakage.csv" in zf.namelist()
    # Compare does not mistake it for one of its runs
    at = open_page("app_pages/compare.py")
    at.file_uploader(key="cmp_import").set_value(("leakage.zip", data, "application/zip"))
    at.run()
    assert not at.exception and not at.error
    assert any("holds Evaluate results (blockdigits-leakage)" in i.value for i in at.info)


def test_pgi_tab_over_uploaded_images():
    at = upload_tab(TABS[5], "pgi", "blockdigits-standard", 2)
    at.radio(key="pgi_perturbation").set_value("baseline")
    at.run()
    press(at, "Measure PGI / PGU")
    assert not at.exception and not at.error, [e.value for e in at.error]
    frame = table(at, "PGI ↑")
    assert list(frame["method"]) == ["Gradient", "Grad-CAM"] and list(frame["k"]) == [0.25, 0.25]
    assert frame["PGI ↑"].between(0, 1).all() and frame["PGU ↓"].between(0, 1).all()
    assert stored(at, perturbation.PGI_KEY)[1].perturbation == "baseline"
