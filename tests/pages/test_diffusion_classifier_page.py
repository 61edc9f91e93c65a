"""The Diffusion classifier page: a drawn scene against its caption and hard negatives, views, bad prompts."""

from __future__ import annotations

import json

import numpy as np
import pytest

import components.diffusion_classifier as dc
from components.diffusion_classifier import services, views
from tests.apptest_support import open_page, stored


def test_a_drawn_scene_is_classified_as_its_caption_with_every_view():
    services.scores.clear()
    at = open_page("app_pages/diffusion_classifier.py")
    assert at.info and "Classify" in at.info[-1].value
    caption = at.selectbox(key="dc_scene").value
    assert at.text_area(key="dc_prompts").value == caption  # the scene's caption is the first candidate
    at.slider(key="dc_samples").set_value(6)
    at.run()
    next(b for b in at.button if b.label == "Classify").click()
    at.run()
    assert not at.exception, at.exception
    request, result = stored(at, dc.RESULT_KEY)
    assert request.prompts[0] == caption and len(request.prompts) == 6  # the caption and 5 hard negatives
    assert result.prompts[result.prediction] == caption
    assert any(caption in s.value for s in at.success)
    table = next(d.value for d in at.dataframe if "mean error" in d.value.columns)
    assert table["prompt"].iloc[0] == caption and table["mean error"].is_monotonic_increasing
    # the error curves and the difference map (with its colour bar); the winner's attention for a word, the
    # shapes classifier's Grad-CAM and the scene as images
    assert len(at.get("plotly_chart")) == 2
    diff = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if (c.key or "").endswith("dc_difference"))
    heat = next(t for t in diff["data"] if t["type"] == "heatmap")
    assert "runner-up − winner" in heat["colorbar"]["title"]["text"] and heat["zmin"] == -heat["zmax"] < 0
    assert len(at.get("image")) == 3
    assert len(at.get("download_button")) == 2


def test_a_probed_pixel_reads_the_error_difference_the_attention_and_the_saliency_there():
    """Issue 28: a pixel of the classified image (typed; a click on the difference map fills the same inputs) shows
    the error difference there (the runner-up's error minus the winner's), the winner's attention of the chosen
    word and the shapes classifier's Grad-CAM, each the array's value at the cell holding the pixel; the
    difference map marks it."""
    from glimpse.probe import cell

    at = open_page("app_pages/diffusion_classifier.py")
    at.slider(key="dc_samples").set_value(6)
    at.run()
    next(b for b in at.button if b.label == "Classify").click()
    at.run()
    request, result = stored(at, dc.RESULT_KEY)
    assert not any("percentile in its map" in d.value.columns for d in at.dataframe)  # nothing probed yet
    x, y = 9, 15
    at.number_input(key=views.PROBE.x).set_value(x)
    at.number_input(key=views.PROBE.y).set_value(y).run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "percentile in its map" in d.value.columns)
    rows = {r["map"]: r["value"] for r in table.to_dict("records")}
    image_shape = request.image.shape[:2]
    diff = result.difference_map()
    r, c = cell(diff.shape, image_shape, x, y)
    assert rows["diffusion classifier: error difference"] == float(diff[r, c])
    cam = next(v for k, v in rows.items() if k.startswith("saliency: Grad-CAM"))
    label = next(k for k in rows if k.startswith("saliency: Grad-CAM"))[len("saliency: Grad-CAM (") : -1]
    values = services.shapes_saliency(request.device, request.image, label)
    r, c = cell(values.shape, image_shape, x, y)
    assert cam == float(values[r, c])
    words = next(d.value for d in at.dataframe if "share" in d.value.columns)
    names, maps = services.winner_attention(
        request.model_id, request.device, request.image, result.prompts[result.prediction], request.samples[-1],
        request.seed,
    )  # fmt: skip
    assert sorted(words["word"]) == sorted(names)  # every word of the winning prompt, ranked at the pixel
    for row in words.to_dict("records"):  # a word said twice ("a") has a map per place
        at_pixel = [float(m[cell(m.shape, image_shape, x, y)]) for n, m in zip(names, maps) if n == row["word"]]
        assert row["attention"] in at_pixel
    assert list(words["attention"]) == sorted(words["attention"], reverse=True)
    # the attention and saliency pictures ring the pixel too
    assert np.any(
        views.attention_overlay(request.image, maps[0], (x, y)) != views.attention_overlay(request.image, maps[0])
    )
    chart = next(c for c in at.get("plotly_chart") if (c.key or "").endswith("dc_difference"))
    assert any(t.get("marker", {}).get("symbol") == "circle-open" for t in json.loads(chart.proto.spec)["data"])


def test_pruning_spends_fewer_evaluations_and_keeps_the_answer():
    at = open_page("app_pages/diffusion_classifier.py")
    at.slider(key="dc_samples").set_value(8)
    at.toggle(key="dc_prune").set_value(True)
    at.run()
    at.slider(key="dc_first").set_value(2)
    at.slider(key="dc_keep").set_value(1)
    next(b for b in at.button if b.label == "Classify").click()
    at.run()
    assert not at.exception, at.exception
    request, result = stored(at, dc.RESULT_KEY)
    assert request.samples == (2, 8) and request.keep == (1, 1)
    assert result.denoiser_evaluations == 6 * 2 + 6 and result.prompts[result.prediction] == request.prompts[0]


def test_unknown_words_and_a_single_candidate_are_explained():
    at = open_page("app_pages/diffusion_classifier.py")
    at.checkbox(key="dc_negatives").uncheck()
    at.text_area(key="dc_prompts").set_value("a red circle").run()
    assert next(b for b in at.button if b.label == "Classify").disabled
    assert any("at least two" in c.value for c in at.caption)
    at.text_area(key="dc_prompts").set_value("a red circle\na purple hexagon").run()
    next(b for b in at.button if b.label == "Classify").click()
    at.run()
    assert not at.exception and stored(at, dc.RESULT_KEY) is None
    assert "unknown words" in at.error[0].value and "hexagon" in at.error[0].value


def test_the_json_download_names_the_prediction():
    at = open_page("app_pages/diffusion_classifier.py")
    at.slider(key="dc_samples").set_value(4)
    next(b for b in at.button if b.label == "Classify").click()
    at.run()
    request, result = stored(at, dc.RESULT_KEY)
    doc = {"image": request.image_name, "model": request.model_id, **result.summary(), "meta": result.meta()}
    assert json.loads(json.dumps(doc))["prediction"] == request.prompts[0]


def test_the_difference_map_has_a_symmetric_colour_bar_at_a_high_percentile():
    """Issue 25: the difference map had no colour bar and was faint (its range was set by the largest pixel)."""
    rng = np.random.default_rng(0)
    diff = rng.normal(0.0, 0.01, (32, 32))
    diff[0, 0] = 1.0  # one extreme pixel must not set the range
    image = np.full((32, 32, 3), 120, np.uint8)
    fig = views.difference_figure(image, diff)
    picture, heat = fig.data
    assert picture.type == "image" and heat.type == "heatmap"
    top = float(np.percentile(np.abs(diff), 99))
    assert (heat.zmin, heat.zmax, heat.zmid) == (pytest.approx(-top), pytest.approx(top), 0.0) and top < 0.1
    assert "runner-up − winner" in heat.colorbar.title.text
    middle = heat.colorscale[len(heat.colorscale) // 2][1]
    assert middle.endswith(", 0)")  # no difference: the image shows through
    assert heat.colorscale[0][1] != heat.colorscale[-1][1]  # blue and red ends


def test_the_winners_attention_leaves_the_image_visible_where_there_is_none():
    """Issue 25: attention overlays tinted the whole image purple at the low end of the scale."""
    image = np.full((32, 32, 3), 200, np.uint8)
    values = np.zeros((8, 8))
    values[2:4, 2:4] = 0.3
    shown = views.attention_overlay(image, values)
    picture, bar = shown[: dc.SHOW], shown[dc.SHOW :]
    assert (picture[-10:, -10:] == 200).all()  # no attention: the image itself
    assert not (picture[70:120, 70:120] == 200).all()  # attention: coloured
    # its colour bar below: the colour map's strip from its low to its high end
    assert bar.shape[0] > 0 and (bar[0, 0] != bar[0, -1]).any()


def test_the_grad_cam_overlay_carries_its_colour_bar():
    """Issue 25: the shapes classifier's Grad-CAM was an overlay without a colour bar. It now has the diverging
    bar of its signed range below the picture, like the lessons' maps."""
    from glimpse.display import DIVERGING, colour_range, lut, overlay, resize_image

    image = np.full((32, 32, 3), 120, np.uint8)
    values = np.zeros((8, 8))
    values[1:3, 1:3], values[5:7, 5:7] = 2.0, -0.5
    shown = views.saliency_overlay(image, values)
    assert shown.shape == (dc.SHOW + 24, dc.SHOW, 3)
    lo, hi, _ = colour_range(values, "signed")
    assert (lo, hi) == (-2.0, 2.0)
    expected = overlay(resize_image(image, (dc.SHOW, dc.SHOW)), values, lo, hi, DIVERGING, alpha=0.6)
    assert (shown[: dc.SHOW] == expected).all()  # the picture itself is unchanged
    strip = shown[dc.SHOW]  # the bar's first row: the diverging map from its blue end to its red end
    assert (strip[0] == lut(DIVERGING)[0]).all() and (strip[-1] == lut(DIVERGING)[-1]).all()
