"""Every page in app.SECTIONS runs without an exception (AppTest), and the home page classifies."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_support import APP

ROOT = Path(__file__).resolve().parents[2]


TIMEOUT = 180  # seconds per script run: model loads on a busy 2-core CI box


def registered_pages() -> list[str]:
    """Paths of the st.Page("app_pages/...") entries in app.py, read from its syntax tree (no import)."""
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    pages = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "Page"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            pages.append(node.args[0].value)
    return pages


def exceptions(at: AppTest) -> list[str]:
    return [f"{e.message}\n{''.join(e.stack_trace)}" for e in at.exception]


def test_home_is_registered_and_every_registered_page_exists():
    pages = registered_pages()
    assert "app_pages/home.py" in pages
    missing = [p for p in pages if not (ROOT / p).is_file()]
    assert not missing, f"app.py registers pages that do not exist: {missing}"


#: pages whose first open computes for long (Lessons draws every lesson's default figure in the AppTest)
SLOW_PAGES = ("app_pages/lessons.py",)


@pytest.mark.parametrize(
    "page", [pytest.param(p, marks=pytest.mark.slow) if p in SLOW_PAGES else p for p in registered_pages()]
)
def test_page_runs_without_exception(page):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not exceptions(at), exceptions(at)
    at.switch_page(page).run()
    assert not exceptions(at), f"{page}: {exceptions(at)}"
    assert at.sidebar.selectbox(key="glimpse_device").value == "auto"  # app.py's sidebar drew too
    assert not [e.value for e in at.error], f"{page} shows an error on first load: {[e.value for e in at.error]}"


@pytest.fixture(scope="module")
def home() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not exceptions(at), exceptions(at)
    return at


def top5(at: AppTest) -> list[str]:
    assert len(at.dataframe) == 1, "the home page should show one top-5 table"
    return list(at.dataframe[0].value["label"])


def test_home_shows_the_lenses_and_top5(home):
    assert home.title[0].value == "Glimpse"
    headings = " ".join(m.value for m in home.markdown)
    for lens in ("Saliency", "Visual complexity", "Cross-attention"):
        assert lens in headings
    labels = top5(home)  # the default sample is chelsea
    assert len(labels) == 5 and labels[0] in {"tabby, tabby cat", "tiger cat", "Egyptian cat"}
    probs = list(home.dataframe[0].value["probability"])
    assert probs == sorted(probs, reverse=True)


def test_home_picking_a_sample_reclassifies(home):
    home.selectbox(key="home_sample").select("coffee").run()
    assert not exceptions(home)
    assert top5(home)[0] == "espresso"
