"""How the saliency page opens its maps: in the ``auto`` value mode, each map drawn over its own range.

RISE (probabilities around 0.6-0.7) and the CAMs (never negative) opened in the signed mode as one flat dark-red
wash: a range of ±max put every pixel in the top of the bar. The raw maps are kept; this is display only.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from components.saliency import views as saliency_views
from glimpse.display import DIVERGING, MODES
from tests.apptest_support import open_page


def _heatmap(at, method: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(f"sal_map_{method}"))
    return next(t for t in json.loads(chart.proto.spec)["data"] if t["type"] == "heatmap")


@pytest.fixture(scope="module")
def page():
    at = open_page("app_pages/saliency.py")
    at.multiselect(key="sal_methods").set_value(["gradient", "gradcam"]).run()
    next(b for b in at.button if b.label == "Compute").click()
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    return at


def test_the_page_opens_in_auto_mode(page):
    assert MODES[0] == "auto"
    assert page.radio(key="sal_mode").value == "auto"


def test_a_one_signed_map_spans_its_range_and_a_signed_map_stays_centred(page):
    cam = _heatmap(page, "gradcam")  # Grad-CAM is ReLU'd: never negative
    assert cam.get("zmid") is None and cam["zmin"] >= 0.0 and cam["zmax"] > cam["zmin"]
    grad = _heatmap(page, "gradient")
    assert grad["zmid"] == 0.0 and grad["zmin"] == -grad["zmax"]
    assert cam["colorscale"] != grad["colorscale"]  # sequential for the CAM, diverging for the gradient
    assert all("colorbar" in h and h["colorbar"]["title"]["text"] for h in (cam, grad))


def test_a_rise_like_map_fills_its_colour_bar_in_auto_mode():
    values = np.linspace(0.6, 0.7, 224 * 224, dtype=np.float32).reshape(224, 224)
    m = SimpleNamespace(values=values, method="rise", seconds=1.0, layer=None)
    options = SimpleNamespace(mode="auto", clip=100.0, shared_scale=False, colorscale="inferno", opacity=0.6)
    (zrange,) = saliency_views.ranges([m], options)
    assert zrange == pytest.approx((0.6, 0.7, None))
    assert saliency_views.colour_scale(options, zrange) == "inferno"
    assert saliency_views.colour_scale(options, (-1.0, 1.0, 0.0)) == DIVERGING  # a map of both signs
    fig = saliency_views.map_figure(m, np.zeros((32, 32, 3), np.uint8), options, zrange)
    heat = next(t for t in fig.data if t.type == "heatmap")
    assert (heat.zmin, heat.zmax) == pytest.approx((0.6, 0.7)) and heat.colorbar.title.text
