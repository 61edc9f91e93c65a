"""Heavy work on a shared model, as a session sees it: its place in the model's line, Cancel, and failures.

Every shared model has one first-come-first-served line (:class:`glimpse.work_queue.ModelQueue`, the bundle's
``lock``). :func:`heavy` wraps a button's work: while the session waits in a line it shows its position and
an estimate of the wait, a Cancel button leaves the line (or stops the running work at its next progress
update), and a device that runs out of memory or a model unloaded under the work becomes an ``st.error`` with
what to do, after the memory the failed call held is given back. The page keeps working either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from glimpse.work_queue import ModelUnloaded, QueueStatus, job
from models.memory import free_device_memory, is_out_of_memory

CANCEL_KEY = "job_cancel"
CANCELLED_KEY = "job_cancelled"


def session_id() -> str:
    ctx = get_script_run_ctx()
    return "" if ctx is None else ctx.session_id


@contextmanager
def heavy(label: str, *, cancel_message: str = "Cancelled; the previous result is kept.") -> Iterator[None]:
    """Run the block as one job in the lines of the models it uses (see the module docstring).

    Streamlit stops a running script at its next element call when a widget is used, so Cancel takes effect
    while waiting (the line is redrawn every fraction of a second) or at the next progress update: locks and
    hooks are released by their own ``with``/``finally``, a cached service stores nothing, and the rerun that
    follows shows ``cancel_message`` once (:func:`cancelled_notice`). Out-of-memory and unloaded-model errors
    are shown here and not raised; other errors propagate to the page's own handlers.
    """
    line = st.empty()
    button = st.empty()
    button.button("Cancel", key=CANCEL_KEY, icon=":material/stop:", on_click=_mark_cancelled, args=(cancel_message,))

    def on_wait(status: QueueStatus) -> None:
        line.info(f":material/hourglass_top: {status.describe()}. Cancel leaves the line.")

    try:
        with job(label, session=session_id(), on_wait=on_wait):
            yield
    except ModelUnloaded as err:
        st.error(f"{err}.")
    except Exception as err:
        if not is_out_of_memory(err):
            raise
        free_device_memory()
        st.error(
            f"Out of memory while computing {label}: {str(err).splitlines()[0][:200]}. The memory it held is "
            "released; try fewer methods, samples or steps, a smaller image, or the CPU device."
        )
    finally:
        line.empty()
        button.empty()


def _mark_cancelled(message: str) -> None:
    st.session_state[CANCELLED_KEY] = message


def cancelled_notice() -> None:
    """The message of work the user cancelled in the previous run (shown once)."""
    message = st.session_state.pop(CANCELLED_KEY, None)
    if message:
        st.info(message)
