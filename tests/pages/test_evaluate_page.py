"""The Evaluate page: BlockDigits leakage for chosen models and methods, table, chart, downloads and maps."""

from __future__ import annotations

import components.evaluate_ui as ui
from tests.apptest_support import open_page


def test_run_scores_every_model_and_method_and_shows_the_maps():
    ui.leakage.clear()
    at = open_page("app_pages/evaluate.py")
    assert at.info and "Run" in at.info[0].value
    at.multiselect(key="eval_methods").set_value(["gradient", "gradcam"])
    at.slider(key="eval_images").set_value(10)
    next(b for b in at.button if b.label == "Run").click()
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["model"]) == ["blockdigits-standard"] * 2 + ["blockdigits-robust"] * 2
    assert list(table["method"]) == ["Gradient", "Grad-CAM"] * 2
    assert table["null top 5 %"].between(0, 100).all() and table["signal mass %"].between(0, 100).all()
    request, results = at.session_state[ui.RESULT_KEY]
    assert request.images == 10 and [r.images for r in results] == [10, 10]
    assert len(at.get("download_button")) == 2  # CSV of the table, JSON with each run's meta()
    # one image, every map: the image and one overlay per method, for each model
    assert len(at.get("image")) == 2 * (1 + 2)
    # a display change (k) re-draws without recomputing
    at.select_slider(key="eval_k").set_value("20").run()
    assert not at.exception and at.session_state[ui.RESULT_KEY][1] is results
