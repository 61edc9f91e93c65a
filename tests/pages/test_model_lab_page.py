"""The Model lab page: each tab computes on the embedded classifier and shows its result; bad input is explained."""

from __future__ import annotations

import numpy as np
import pytest

import components.model_lab as ui
from components.model_lab import services
from tests.apptest_support import open_page, stored


def _press(at, label: str) -> None:
    next(b for b in at.button if b.label == label).click()
    at.run()
    assert not at.exception, at.exception


def test_a_class_visualisation_and_its_trace():
    services.visualization.clear()
    at = open_page("app_pages/model_lab.py")
    assert at.selectbox(key="lab_vis_class").value == 285  # Egyptian cat
    at.slider(key="lab_vis_steps").set_value(32)
    at.selectbox(key="lab_vis_side").set_value(64)
    at.run()
    _press(at, "Visualise")
    vis = stored(at, ui.KEYS["vis"])
    assert vis.image.shape == (64, 64, 3) and vis.probability > 0.5 and len(vis.trace) == 32
    assert any("Egyptian cat" in img.caption for im in at.get("image") for img in im.proto.imgs)
    # a channel objective names its layer; display reruns do not recompute
    at.radio(key="lab_vis_kind").set_value("A channel").run()
    at.number_input(key="lab_vis_channel").set_value(3).run()
    _press(at, "Visualise")
    assert stored(at, ui.KEYS["vis"]).objective.kind == "channel"


@pytest.mark.slow
def test_facets_from_offline_pictures_and_top_images():
    at = open_page("app_pages/model_lab.py")
    at.slider(key="lab_facets_steps").set_value(16)
    at.selectbox(key="lab_facets_side").set_value(64)
    at.slider(key="lab_facets_k").set_value(2)
    at.run()
    _press(at, "Find the facets")
    result, pool = stored(at, ui.KEYS["facets"])
    assert len(result.visualizations) == 2 and sum(map(len, result.members)) == len(pool.images)
    assert any("facet" in m.value.lower() for m in at.markdown)
    at.slider(key="lab_ex_top").set_value(4).run()
    _press(at, "Find the top images")
    found, pool = stored(at, ui.KEYS["examples"])
    assert len(found) == 4 and [e.score for e in found] == sorted((e.score for e in found), reverse=True)


@pytest.mark.slow
def test_a_blind_spot_traversal_shows_its_path_and_measures():
    services.traversal.clear()
    at = open_page("app_pages/model_lab.py")
    at.selectbox(key="lab_target").set_value("coffee")
    at.slider(key="lab_bs_steps").set_value(20)
    at.select_slider(key="lab_bs_step").set_value(0.08)
    at.run()
    _press(at, "Traverse")
    tr, coords, conf, written = stored(at, ui.KEYS["blind"])
    assert tr.distances["ssim"] > tr.distances["source_ssim"]
    # the page's number for the downloadable end.png is what a reader of that file gets
    from glimpse.images import load_image
    from models.registry import load_classifier

    bundle = load_classifier("efficientnet-lite0", device="cpu")
    probs = {i: p for i, _, p in bundle.predict(load_image(written.png), top=bundle.num_classes)}
    assert load_image(written.png).shape[:2] == tuple(bundle.input_size)
    assert abs(probs[tr.source_class] - written.confidence) < 1e-6
    assert abs(written.confidence - tr.end_confidence_8bit) < 1e-4
    assert any("written end image" in m.value for m in at.markdown)
    assert tr.end_confidence >= tr.start_confidence - 0.2
    assert coords.shape[0] == conf.shape[0] and np.all((conf >= 0) & (conf <= 1))
    assert any("SSIM" in m.label for m in at.metric)
    assert len(at.get("plotly_chart")) >= 2


def test_the_upload_source_waits_for_images():
    at = open_page("app_pages/model_lab.py")
    at.radio(key="lab_ex_source").set_value("Upload").run()
    assert not at.exception
    assert next(b for b in at.button if b.label == "Find the top images").disabled
