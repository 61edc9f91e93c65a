"""AppTest helpers shared by the page and component tests.

The page scripts live in ``app_pages/``, not ``pages/``: Streamlit treats a ``pages/`` folder beside the main
script as a legacy multipage app until ``st.navigation`` runs, so a session that started on a deep link
(``/saliency?methods=…``) kept the folder's file-name navigation and lost the sidebar, and AppTest ran the
page file instead of ``app.py``.
"""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_page(page: str, timeout: float = 120) -> AppTest:
    """Run app.py, switch to ``page`` (e.g. "app_pages/saliency.py") and check the page raised nothing."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at
