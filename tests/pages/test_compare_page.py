"""The Compare page end to end (AppTest): compute, re-slice without recompute, export -> import restores the
same run, a hostile bundle is refused, and generate -> classify -> explain on the embedded models."""

import io
import zipfile

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import components.compare_ui as ui
from tests.apptest_support import open_page


@pytest.fixture
def calls(monkeypatch):
    """Count real runs (the wrapped function is the real one, on the real embedded models)."""
    made = []
    real = ui.run_compare

    def counting(*args, **kwargs):
        made.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(ui, "run_compare", counting)
    ui.compare.clear()
    return made


def compare_page() -> AppTest:
    return open_page("pages/compare.py", timeout=180)


def press(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    at.run()
    assert not at.exception, at.exception
    return at


def test_compute_reslice_export_import(calls):
    at = compare_page()
    assert at.info and "Compute" in at.info[0].value
    at.multiselect(key="cmp_methods").set_value(["gradient", "gradcam"])
    at.slider(key="cmp_k").set_value(10.0)
    press(at, "Compute")
    assert not at.error, [e.value for e in at.error]
    assert len(calls) == 1
    run = at.session_state[ui.RUN_KEY]
    assert "saliency: Grad-CAM" in run.map_names and run.params["k"] == 10.0
    charts = at.get("plotly_chart")
    assert len(charts) == len(run.map_names) + 1  # every panel + the agreement matrix
    assert any("inside" in str(df.value.columns.tolist()) for df in at.dataframe)

    # display controls re-slice the stored run
    at.slider(key="cmp_opacity").set_value(0.3)
    at.radio(key="cmp_norm").set_value("min-max per panel")
    at.run()
    assert not at.exception and len(calls) == 1

    press(at, "Prepare bundle")
    assert at.get("download_button")
    data = at.session_state[ui.EXPORT_KEY][1]

    # a fresh session imports it: same maps, same controls, nothing recomputed
    fresh = compare_page()
    fresh.file_uploader(key="cmp_import").set_value(("run.zip", data, "application/zip"))
    fresh.run()
    assert not fresh.exception, fresh.exception
    assert not fresh.error, [e.value for e in fresh.error]
    back = fresh.session_state[ui.RUN_KEY]
    assert back.map_names == run.map_names
    for a, b in zip(run.maps, back.maps):
        np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(back.image, run.image)
    assert back.tables["agreement"] == run.tables["agreement"]
    assert fresh.slider(key="cmp_k").value == 10.0
    assert fresh.multiselect(key="cmp_methods").value == ["gradient", "gradcam"]
    assert fresh.slider(key="cmp_opacity").value == 0.3
    assert fresh.radio(key="cmp_norm").value == "min-max per panel"
    assert len(calls) == 1


def test_hostile_bundle_is_refused_with_a_message():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", "{}")
        zf.writestr("../../escape.png", b"x")
    at = compare_page()
    at.file_uploader(key="cmp_import").set_value(("evil.zip", buf.getvalue(), "application/zip"))
    at.run()
    assert not at.exception, at.exception
    assert at.error and "path traversal" in at.error[0].value
    assert ui.RUN_KEY not in at.session_state


def test_generate_classify_explain(calls):
    at = compare_page()
    at.radio(key="cmp_mode").set_value("Generate from a prompt")
    at.run()
    at.text_input(key="cmp_prompt").set_value("a red circle")
    at.slider(key="cmp_steps").set_value(3)
    at.multiselect(key="cmp_methods").set_value(["gradcam"])
    press(at, "Compute")
    assert not at.error, [e.value for e in at.error]
    run = at.session_state[ui.RUN_KEY]
    assert run.prompt == "a red circle" and run.params["steps"] == 3
    assert at.selectbox(key="cmp_word").value == "attention: circle (#3)"
    assert {m.label for m in at.metric} >= {"Spearman ρ", "Word peak in class region"}
