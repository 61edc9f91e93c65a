"""Evaluate's "Complexity study" tab (issue 28): its cost before it runs, the clutter study's rows equal to the study
task's rows of the same scenes (as ``glimpse study`` computes them from files), the summary with its intervals, and
uploads, a bad one refused with a line that says why."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from components import jobs
from components.evaluate import study
from tests.apptest_support import stored
from tests.pages.test_evaluate_page import open_tab, press

TAB = "Complexity study"
BUTTON = "Run the study"


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def reference_rows(tmp_path, methods, *, per_level=3, steps=20) -> pd.DataFrame:
    """The clutter set written as files and run through the study task in batches, as the command does."""
    from glimpse.batch import list_inputs, read_rows, run_batch
    from glimpse.batch.study import StudyTask, write_clutter
    from models.registry import load_classifier

    images, masks, targets = write_clutter(tmp_path / "in", per_level=per_level, seed=0)
    task = StudyTask(model_id="shapes-classifier", methods=methods, out=str(tmp_path / "out"), loader=load_classifier,
                     steps=steps, masks=str(masks), targets=targets)  # fmt: skip
    run_batch(task, list_inputs(str(images)), tmp_path / "out")
    return read_rows(tmp_path / "out").set_index("path").sort_index()


def assert_same_rows(frame: pd.DataFrame, reference: pd.DataFrame) -> None:
    frame = frame.set_index("path").sort_index()
    assert list(frame.index) == list(reference.index) and list(frame.columns) == list(reference.columns)
    for column in reference.columns:
        mine, theirs = frame[column], reference[column]
        if pd.api.types.is_float_dtype(theirs):  # batched forwards of other batch sizes: equal to float rounding
            np.testing.assert_allclose(mine.to_numpy(float), theirs.to_numpy(float), rtol=1e-5, atol=1e-7,
                                       err_msg=column)  # fmt: skip
        else:
            assert mine.tolist() == theirs.tolist(), column


@pytest.mark.slow
def test_the_default_clutter_study_costs_first_then_gives_the_tasks_rows_and_intervals(tmp_path):
    jobs.forget_steps()
    at = open_tab(TAB)
    assert at.radio(key="study_source").value == "clutter"
    methods = tuple(at.multiselect(key="study_methods").value)
    assert methods == study.DEFAULT_METHODS and at.slider(key="study_per_level").value == 3
    # before it runs: what it will cost, one batch per scene of each level (3 batches of 6 scenes)
    assert any(c.value.startswith("**Cost:** 3 batches, ") and "on this machine" in c.value for c in at.caption)
    assert stored(at, study.STUDY_KEY) is None
    press(at, BUTTON)
    assert not at.exception and not at.error, [e.value for e in at.error]
    request, run = stored(at, study.STUDY_KEY)
    assert request.model_id == "shapes-classifier" and len(run.frame) == 18 and run.frame["has_mask"].all()
    # the rows are the study task's rows of the same scenes, read back from files as `glimpse study` reads them
    reference = reference_rows(tmp_path, methods)
    assert_same_rows(run.frame, reference)
    shown = next(d.value for d in at.dataframe if "gradcam_pointing_game" in d.value.columns)
    assert_same_rows(shown, reference)
    # the summary: ρ of every metric with each feature, inside its bootstrap interval, over the 18 scenes
    summary = next(d.value for d in at.dataframe if "ρ" in d.value.columns)
    assert {"feature", "method", "metric", "ρ", "95 % low", "95 % high", "images"} <= set(summary.columns)
    pg = summary[(summary["feature"] == "MSG") & (summary["metric"] == "pointing_game")]
    assert list(pg["method"]) == ["Grad-CAM", "Gradient", "Input × Gradient"] and (pg["images"] == 18).all()
    defined = summary.dropna(subset=["ρ", "95 % low"])
    assert len(defined) > 10 and (defined["95 % low"] <= defined["ρ"] + 1e-9).all()
    assert (defined["ρ"] <= defined["95 % high"] + 1e-9).all()
    expected = study.summarise(reference.reset_index(), methods, resamples=study.RESAMPLES).get(
        "MSG", "gradcam", "pointing_game"
    )
    assert run.summary.get("MSG", "gradcam", "pointing_game").rho == pytest.approx(expected.rho)
    # the plots of the picked metric, and the downloads: rows as CSV and Parquet, the summary as JSON
    assert len(at.get("image")) == 2
    assert {b.proto.label for b in at.get("download_button")} == {
        "CSV of the rows", "Parquet of the rows", "JSON of the summary"
    }  # fmt: skip
    at.selectbox(key="study_metric").set_value("deletion_auc").run()
    assert not at.exception and stored(at, study.STUDY_KEY)[1] is run
    assert not next(b for b in at.button if b.label == BUTTON).disabled


def test_uploaded_images_run_on_the_sidebars_classifier_and_a_bad_one_is_named():
    from glimpse.evaluation.blockdigits import sample_images

    jobs.forget_steps()
    at = open_tab(TAB)
    at.sidebar.selectbox(key="glimpse_embedded_pick").select("blockdigits-standard").run()
    at.radio(key="study_source").set_value("uploads").run()
    assert any("Upload images" in i.value for i in at.info)
    uploads = [(f"{i}.png", _png(p), "image/png") for i, p in enumerate(sample_images(4).values())]
    at.file_uploader(key="study_images").set_value(uploads)
    at.multiselect(key="study_methods").set_value(["gradient", "gradcam"])
    at.run()
    assert any(c.value.startswith("**Cost:** 4 images, ") and "no masks" in c.value for c in at.caption)
    press(at, BUTTON)
    assert not at.exception and not at.error, [e.value for e in at.error]
    request, run = stored(at, study.STUDY_KEY)
    assert request.model_id == "blockdigits-standard" and sorted(run.frame["path"]) == [f"{i}.png" for i in range(4)]
    assert run.frame["error"].isna().all() and not run.frame["has_mask"].any()
    assert run.frame["gradient_deletion_auc"].between(0, 1).all() and run.frame["gradient_pointing_game"].isna().all()
    assert run.summary is not None and {c.metric for c in run.summary.correlations} >= {"deletion_auc", "agreement"}
    # a file that is no image: one line naming it, no traceback, nothing run
    at.file_uploader(key="study_images").set_value([*uploads, ("notes.png", b"not an image", "image/png")])
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Cannot run the study: image: notes.png is not an image format Pillow can read"
    ]
    assert next(b for b in at.button if b.label == BUTTON).disabled


@pytest.mark.slow
def test_the_photographs_resample_a_photograph_with_its_crops():
    """On the sample photographs the summary's bootstrap draws photographs (each with its crops), not images."""
    jobs.forget_steps()
    at = open_tab(TAB)
    at.radio(key="study_source").set_value("photos").run()
    at.slider(key="study_crops").set_value(1)
    at.slider(key="study_steps").set_value(5)
    at.multiselect(key="study_methods").set_value(["gradient"])
    at.run()
    press(at, BUTTON)
    assert not at.exception and not at.error, [e.value for e in at.error]
    _, run = stored(at, study.STUDY_KEY)
    assert len(run.frame) == 12 and sorted(set(run.frame["group"])) == sorted(
        {p.split("-")[0].removesuffix(".png") for p in run.frame["path"]}
    )
    assert run.frame["group"].nunique() == 6 and run.summary.groups == "group"
    assert run.summary.meta()["bootstrap"]["unit"] == "group"
