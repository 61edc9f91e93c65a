"""The Lessons page: every lesson loads, its figure answers a control, its answer opens; deep links, presenter mode."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from components.lessons import warmup
from components.lessons.content import KEYS, LESSONS
from tests.apptest_support import APP

#: one control per lesson and a value to move it to
CONTROLS = {
    "smoothgrad": ("select_slider", "l1_samples", 1),
    "sanity": ("select_slider", "l2_stage", 0),
    "robust": ("selectbox", "l3_method", "gradcam"),
    "cams": ("radio", "l4_method", "normgrad"),
    "complexity": ("slider", "l5_bits", 7),
    "red": ("slider", "l6_step", 3),
    "style": ("radio", "l7_pair", "blue square"),
    "relations": ("select_slider", "l8_samples", 5),
}


def _lesson(key: str, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["lesson"] = key
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("app_pages/lessons.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _images(at) -> list[str]:
    return [img.caption for im in at.get("image") for img in im.proto.imgs]


def test_every_lesson_is_listed_with_a_control():
    assert set(CONTROLS) == set(KEYS) and len(LESSONS) == 8


@pytest.mark.parametrize("key", KEYS)
def test_each_lesson_loads_and_its_figure_answers_its_control(key):
    at = _lesson(key)
    number = KEYS.index(key) + 1
    assert at.header[0].value.startswith(f"{number}. ")
    assert len(at.markdown) >= 2 and at.expander and at.caption
    before = (_images(at), [c.proto.spec for c in at.get("plotly_chart")], [d.value.to_json() for d in at.dataframe])
    kind, widget, value = CONTROLS[key]
    getattr(at, kind)(key=widget).set_value(value).run()
    assert not at.exception, at.exception
    after = (_images(at), [c.proto.spec for c in at.get("plotly_chart")], [d.value.to_json() for d in at.dataframe])
    assert after != before, f"lesson {key}: the figure did not change with {widget}"
    # a second visit reads the cached results: under two seconds
    start = time.perf_counter()
    _lesson(key)
    assert time.perf_counter() - start < 6  # the app's start-up included; the lesson itself is cached


def test_next_and_previous_walk_the_lessons_and_presenter_mode_hides_the_sidebar():
    at = _lesson("complexity", present="1")
    assert not at.title  # no page title in presenter mode
    assert any("stSidebar" in m.value and "display: none" in m.value for m in at.markdown)
    next(b for b in at.button if b.label == "Next").click()
    at.run()
    assert at.query_params["lesson"] == ["red"] or at.query_params["lesson"] == "red"
    assert at.header[0].value.startswith("6. ")
    next(b for b in at.button if b.label == "Previous").click()
    at.run()
    assert at.header[0].value.startswith("5. ")


def test_a_deep_link_by_number_and_an_unknown_lesson():
    at = _lesson("8")
    assert at.header[0].value.startswith("8. ")
    assert next(b for b in at.button if b.label == "Next").disabled
    at = _lesson("nope")
    assert at.warning and "nope" in at.warning[0].value and at.header[0].value.startswith("1. ")


def test_after_the_warm_up_every_lesson_opens_without_computing(monkeypatch):
    """The warm-up computes each lesson's figure at its defaults: opening any lesson afterwards reads the caches
    (the library functions that compute the figures are made to fail, so a cache miss would show)."""
    import glimpse.attention
    import glimpse.diffusion_classifier
    import glimpse.evaluation.sanity
    import glimpse.saliency

    assert warmup.warm("cpu", idle_wait_s=0) == [key for key, _, _ in warmup.figures("cpu")]

    def computed(*args, **kwargs):
        raise AssertionError("a lesson computed its figure after the warm-up")

    for module, name in [(glimpse.saliency, "explain"), (glimpse.attention, "generate_with_attention"),
                         (glimpse.evaluation.sanity, "randomisation_check"), (glimpse.diffusion_classifier, "classify")]:  # fmt: skip
        monkeypatch.setattr(module, name, computed)
    for key in KEYS:
        at = _lesson(key)
        assert not at.error, (key, [e.value for e in at.error])
