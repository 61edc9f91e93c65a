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


def stored(at: AppTest, key):
    """What the page keeps under ``key`` in its session's result store (components/session_results.py)."""
    from components import session_results

    if session_results.STATE_KEY not in at.session_state:
        return None
    return at.session_state[session_results.STATE_KEY].get(key)


def stored_under(at: AppTest, prefix: str) -> dict:
    """The result store's entries whose tuple key starts with ``prefix``, by the rest of the key."""
    from components import session_results

    if session_results.STATE_KEY not in at.session_state:
        return {}
    results = at.session_state[session_results.STATE_KEY]
    return {k[1:]: results.get(k) for k in results.keys() if isinstance(k, tuple) and k[0] == prefix}


def put_result(at: AppTest, key, value) -> None:
    """Put ``value`` in the session's result store as the page's button would."""
    from components import session_results

    if session_results.STATE_KEY not in at.session_state:
        at.session_state[session_results.STATE_KEY] = session_results.BoundedResults(32, 256 * 2**20, 7200)
    at.session_state[session_results.STATE_KEY].put(key, value)


def generate(at: AppTest, prompt: str, steps: int = 4) -> AppTest:
    """On the Cross-attention page: type ``prompt``, set ``steps`` denoising steps, press Generate and run."""
    at.text_input(key="attention_prompt").set_value(prompt)
    at.slider(key="attention_steps").set_value(steps)
    next(b for b in at.button if b.label == "Generate").click()
    return at.run()
