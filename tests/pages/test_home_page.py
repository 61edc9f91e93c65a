"""The home page as a new user sees it: a card for every page, a readable top-5, honest size warnings."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from components import home_ui
from components.image_input import size_problem
from tests.apptest_support import APP
from tests.pages.test_apptest_pages import registered_pages


@pytest.fixture(scope="module")
def home() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    assert not at.exception, at.exception
    return at


def test_every_page_but_home_has_a_card_with_a_link(home):
    """Model lab and Lessons had no card."""
    linked = {p.proto.page for p in home.get("page_link")}
    pages = {p.removeprefix("app_pages/").removesuffix(".py") for p in registered_pages()} - {"home"}
    assert pages <= linked, f"no card for {sorted(pages - linked)}"
    assert {path for path, *_ in home_ui.LENSES} == {p for p in registered_pages() if not p.endswith("home.py")}


def test_the_top5_probability_is_first_at_a_fixed_width(home):
    """With the label first, a long label cut the probability column down to '1.' in the half-width column."""
    table = home.dataframe[0]
    assert list(table.value.columns)[0] == "probability"
    config = json.loads(table.proto.columns)
    probability = config["probability"]
    assert probability["width"] == home_ui.PROBABILITY_WIDTH >= 120 and probability["pinned"]
    assert probability["type_config"]["format"] == "percent"
    assert "width" not in config["label"]  # the label takes what is left (in full on hover)


@pytest.mark.parametrize(
    ("shape", "says", "never"),
    [
        ((40, 6000), ["6000×40", "stretched to", "width shrunk 27×", "height enlarged 5.6×", "squashed"], "far below"),
        ((6000, 40), ["40×6000", "tall", "width enlarged 5.6×", "height shrunk 27×"], "far below"),
        ((600, 3000), ["3000×600", "width shrunk 13×", "height shrunk 2.7×", "squashed"], "blurred"),
        ((1, 1), ["1×1 pixels, far below the model's input of 224×224", "enlarged 224×"], "squashed"),
        ((20, 30), ["far below", "enlarged 7.5×–11×"], "squashed"),
    ],
)
def test_the_size_warning_says_what_the_resize_does_to_each_side(shape, says, never):
    message = size_problem(shape, (224, 224))
    assert message is not None
    for part in says:
        assert part in message, (part, message)
    assert never not in message


@pytest.mark.parametrize("shape", [(224, 224), (300, 451), (3000, 4000), (1080, 1920), (64, 64)])
def test_ordinary_photographs_get_no_warning(shape):
    assert size_problem(shape, (224, 224)) is None


def test_a_strip_upload_on_home_is_called_stretched_not_small(home):
    home.radio(key="home_source").set_value("Upload").run()
    buf = io.BytesIO()
    Image.new("RGB", (6000, 40), (120, 40, 200)).save(buf, format="PNG")
    home.file_uploader(key="home_upload").set_value(("strip.png", buf.getvalue(), "image/png")).run()
    assert not home.exception, home.exception
    warnings = [w.value for w in home.warning]
    assert any("6000×40" in w and "stretched to that" in w for w in warnings), warnings
    assert not any("far below" in w for w in warnings)
