"""What a session keeps of the Model lab: each tab's request run as a job (place in the line, Cancel,
out-of-memory message, a bad parameter as an st.error naming it) and its result."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from components import jobs, session_results
from components.model_lab import KEYS


def run(kind: str, label: str, fn: Callable[[], object]) -> None:
    """Run ``fn`` as a job and store its result under the tab ``kind``; a bad parameter becomes an st.error."""
    try:
        with jobs.heavy(label, cancel_message=f"{label.capitalize()} cancelled; the previous result is kept."):
            session_results.put(KEYS[kind], fn())
    except ValueError as err:
        st.error(f"{err}. Change it and press the button again.")


def stored(kind: str):
    """The tab's last result in this session, or None."""
    return session_results.get(KEYS[kind])
