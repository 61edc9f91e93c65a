"""AppTest helpers shared by the page and component tests.

Streamlit 1.67's AppTest resets ``PagesManager.uses_pages_directory`` before every run; because this
repository has a ``pages/`` folder, each run then starts in the legacy multipage mode, which builds its
own navigation from ``pages/*.py`` and — from the second run on — executes the page file directly
instead of ``app.py``: the sidebar disappears and ``app.py`` is skipped. A real ``streamlit run`` server
sets the flag to False once (``st.navigation``) and always runs ``app.py``. :func:`v2_navigation`
makes AppTest behave like the server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from streamlit.runtime import pages_manager
from streamlit.testing.v1 import AppTest, app_test

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_page(page: str, timeout: float = 120) -> AppTest:
    """Run app.py, switch to ``page`` (e.g. "pages/saliency.py") and check the page raised nothing."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


class _NavigationPagesManager(pages_manager.PagesManager):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        pages_manager.PagesManager.uses_pages_directory = False  # app.py calls st.navigation


@contextlib.contextmanager
def v2_navigation() -> Iterator[None]:
    """Within this block every AppTest run executes app.py (and its st.navigation), as the server does."""
    original = app_test.PagesManager
    app_test.PagesManager = _NavigationPagesManager
    try:
        yield
    finally:
        app_test.PagesManager = original
        pages_manager.PagesManager.uses_pages_directory = None
