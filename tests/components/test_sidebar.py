"""The shared sidebar (device picker with memory line, classifier picker) through AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_support import APP
from tests.tiny_models import save_tiny_vit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_vit_dir(tmp_path_factory) -> Path:
    labels = {0: "left", 1: "right"}
    return save_tiny_vit(
        tmp_path_factory.mktemp("sidebar_vit"), labels, hidden_size=16, num_hidden_layers=1, intermediate_size=32
    )


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    assert not at.exception
    return at


def load_model(at: AppTest, model_id: str) -> AppTest:
    at.sidebar.text_input[0].input(model_id)
    next(b for b in at.sidebar.button if b.label == "Load").click()
    return at.run()


def test_device_picker_and_memory_line(app):
    device = app.sidebar.selectbox(key="glimpse_device")
    assert device.value == "auto" and device.options[0] == "auto" and "cpu" in device.options
    captions = [c.value for c in app.sidebar.caption]
    assert any("MiB" in c for c in captions), captions  # memory in use is shown
    device.select("cpu").run()
    assert not app.exception
    assert any(c.startswith("CPU") for c in (c.value for c in app.sidebar.caption))


def test_default_classifier_is_shown(app):
    assert app.sidebar.selectbox(key="glimpse_embedded_pick").value == "efficientnet-lite0"


def test_unknown_model_gives_an_error_and_keeps_the_default(app):
    load_model(app, "nope")
    assert not app.exception
    assert any("unknown id 'nope'" in e.value for e in app.sidebar.error)
    assert app.session_state["glimpse_model_id"] == "efficientnet-lite0"


def test_missing_extra_is_explained(app):
    from models.hub import extra_available

    if extra_available("torchvision"):
        pytest.skip("torchvision imports here")
    assert any("torchvision: not installed" in c.value for c in app.sidebar.caption)
    load_model(app, "torchvision:resnet18")
    assert any("requirements-extras.txt" in e.value for e in app.sidebar.error)


def test_loading_a_local_hf_model_switches_the_home_page(app, tiny_vit_dir):
    load_model(app, f"hf:{tiny_vit_dir}")
    assert not app.exception and not app.error
    assert app.session_state["glimpse_model_id"] == f"hf:{tiny_vit_dir}"
    assert any(f"hf:{tiny_vit_dir}" in m.value for m in app.sidebar.markdown)  # a hub model is named
    assert app.sidebar.selectbox(key="glimpse_embedded_pick").value is None
    assert sorted(app.dataframe[0].value["label"]) == ["left", "right"]  # home top-5 from the tiny ViT
    next(b for b in app.sidebar.button if b.label == "Back to the embedded model").click().run()
    assert app.session_state["glimpse_model_id"] == "efficientnet-lite0"
    assert len(app.dataframe[0].value) == 5


def test_the_embedded_classifiers_are_in_the_picker(app):
    pick = app.sidebar.selectbox(key="glimpse_embedded_pick")
    assert pick.options[0] == "efficientnet-lite0" and len(pick.options) == 5 and "shapes-classifier" in pick.options
    assert any(o.startswith("blockdigits-robust") for o in pick.options)
    pick.select("blockdigits-robust").run()
    assert not app.exception
    assert app.session_state["glimpse_model_id"] == "blockdigits-robust"
    assert set(app.dataframe[0].value["label"]) <= {str(d) for d in range(10)}  # home top-5 are digits
    assert app.sidebar.selectbox(key="glimpse_embedded_pick").value == "blockdigits-robust"
