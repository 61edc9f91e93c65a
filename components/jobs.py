"""Work on a shared model as a session sees it: its place in the line, progress, Cancel, and its end.

Every shared model has one first-come-first-served line (:class:`glimpse.work_queue.ModelQueue`, the bundle's
``lock``). Two ways to run work there, one for each size of work:

- :func:`heavy` wraps one call (a saliency panel, a generation): while the session waits in a line it shows
  its position and an estimate, Cancel leaves the line (or stops the work at its next progress update), and a
  device that runs out of memory or a model unloaded under the work becomes an ``st.error`` with what to do.
- :func:`run_job` runs a :class:`Plan`: work cut into steps (an image, a retraining, a lesson's figure). Before
  it starts the page shows what it will cost (:func:`job_button`: the estimate beside a button that is
  disabled while the job runs); while it runs, one :class:`Progress` bar says "image 12 of 50 · ≈ 40 s left",
  the partial result is drawn after every step, and Cancel stops it. Each step takes its models' line itself
  (the library takes ``bundle.lock`` per image or batch), so another session's click waits for one step at
  most, not for the whole job. Finished steps are cached by the page's step functions, so Cancel keeps them
  and Run resumes from them.

A job ends with its session: Streamlit asks a disconnected session's script to stop, and every progress
update is a point where it stops; :func:`checkpoint` also stops a job whose session is no longer connected
(a closed tab) and logs it, so an abandoned job does not keep a core busy.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException, StopException

from glimpse.durations import plural, seconds_text, time_left
from glimpse.work_queue import ModelUnloaded, QueueStatus, job
from models.memory import free_device_memory, is_out_of_memory

CANCEL_KEY = "job_cancel"
CANCELLED_KEY = "job_cancelled"
_REQUESTED = "_job_requested"  # session-state prefix: the button of this key was pressed (one run only)
_NOTICE = "_job_notice"  # session-state prefix: a job's message, shown once beside its button

LOG = logging.getLogger("glimpse.jobs")


def log_to_server() -> None:
    """Glimpse's INFO messages (a job finished or stopped, the lessons' warm-up) on the server's stderr, once."""
    log = logging.getLogger("glimpse")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def session_id() -> str:
    ctx = get_script_run_ctx()
    return "" if ctx is None else ctx.session_id


def session_connected() -> bool:
    """Whether this script run's browser session is still connected (True outside a served app)."""
    from streamlit import runtime

    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return True
    return runtime.get_instance().is_active_session(ctx.session_id)


def checkpoint(label: str = "work") -> None:
    """Stop the script here when its session has gone (the tab was closed): the job's ``with`` blocks release
    what they hold on the way out."""
    if not session_connected():
        LOG.info("job %r stopped: its session %s is no longer connected", label, session_id())
        st.stop()


def outside_caches(draw: Callable[..., Any]) -> Callable[..., Any]:
    """``draw`` called as from here, outside any cached service running later.

    Streamlit records what a ``st.cache_data`` service draws, to replay it on a cache hit; a place in the line
    or a progress update drawn from inside a service on a placeholder made outside it would be recorded too,
    and its replay fails (``CacheReplayClosureError``: the placeholder belongs to another run). The recording
    lives in context variables, so ``draw`` runs in a copy of the context taken now.
    """
    here = contextvars.copy_context()

    def drawn(*args: Any, **kwargs: Any) -> Any:
        return here.copy().run(draw, *args, **kwargs)

    return drawn


@contextmanager
def heavy(
    label: str,
    *,
    cancel_message: str = "Cancelled; the previous result is kept.",
    on_error: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Run the block as one job in the lines of the models it uses (see the module docstring).

    Streamlit stops a running script at its next element call when a widget is used, so Cancel takes effect
    while waiting (the line is redrawn every fraction of a second) or at the next progress update: locks and
    hooks are released by their own ``with``/``finally``, a cached service stores nothing, and the rerun that
    follows shows ``cancel_message`` once (:func:`cancelled_notice`). Out-of-memory and unloaded-model errors
    are shown here (``st.error``, or ``on_error(message)``) and not raised; other errors propagate to the
    page's own handlers.
    """
    show_error = on_error or st.error
    line = st.empty()
    show_line = outside_caches(line.info)  # the line is waited in inside cached services
    button = st.empty()
    button.button("Cancel", key=CANCEL_KEY, icon=":material/stop:", on_click=_mark_cancelled, args=(cancel_message,))

    def on_wait(status: QueueStatus) -> None:
        checkpoint(label)
        show_line(f":material/hourglass_top: {status.describe()}. Cancel leaves the line.")

    try:
        with job(label, session=session_id(), on_wait=on_wait):
            yield
    except ModelUnloaded as err:
        show_error(f"{err}.")
    except Exception as err:
        if not is_out_of_memory(err):
            raise
        free_device_memory()
        show_error(
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


# ------------------------------------------------------------------------------------------ progress
class Progress:
    """The one progress bar of the app: "image 3 of 20: chelsea · ≈ 12 s left".

    ``total`` steps of ``unit``; :meth:`step` starts a step, :meth:`within` is the ``progress(fraction,
    message)`` callback a step's library call takes. Time left comes from the time the finished part took
    (steps plus the finished fraction of the current one), and from ``estimate_s`` before anything finished.
    Every update is a checkpoint: a cancelled job or a closed session stops there.
    """

    def __init__(self, label: str, total: int, *, unit: str = "step", estimate_s: float | None = None) -> None:
        self.label, self.total, self.unit, self.estimate_s = label, max(1, int(total)), unit, estimate_s
        self.t0 = time.perf_counter()
        self.index, self.name = 0, ""
        self.bar = st.progress(0.0, text=f"{label.capitalize()}…")
        self._draw = outside_caches(self.bar.progress)  # a step's callback may run inside a cached service

    def left_s(self, done: float) -> float | None:
        """Seconds left when ``done`` steps (fractional) of ``total`` are finished."""
        elapsed = time.perf_counter() - self.t0
        if done >= 0.05 and elapsed > 0.2:
            return elapsed / done * (self.total - done)
        if self.estimate_s is not None:
            return max(0.0, self.estimate_s - elapsed)
        return None

    def text(self, done: float, message: str = "") -> str:
        head = f"{self.unit} {self.index + 1} of {self.total}" if self.total > 1 else self.label.capitalize()
        name = f": {self.name}" if self.name else ""
        detail = f" ({message})" if message and message != self.name else ""
        left = self.left_s(done)
        eta = f" · {seconds_text(left)} left" if left is not None and done < self.total else ""
        return f"{head}{name}{detail}{eta}"

    def step(self, index: int, name: str = "") -> None:
        self.index, self.name = int(index), name
        checkpoint(self.label)
        self._draw(min(1.0, index / self.total), text=self.text(index))

    def within(self, fraction: float, message: str = "") -> None:
        """Progress inside the current step (``fraction`` of it done)."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        done = self.index + fraction
        checkpoint(self.label)
        self._draw(min(1.0, done / self.total), text=self.text(done, message))

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.t0

    def done(self) -> None:
        self.bar.empty()


@contextmanager
def bar(label: str, *, unit: str = "", total: int | None = None) -> Iterator[Callable[..., None]]:
    """The app's progress bar for one call's library progress (inside a cached service, so that a cache hit
    replays it finished): yields ``progress(fraction, message)``, or with ``total``, ``progress(done, total)``
    (the lab's loops). Its text is the same everywhere: "step 12 of 50 · ≈ 40 s left" or "message · ≈ 40 s left";
    every update is a point where a cancelled job or a closed session stops (:func:`checkpoint`)."""
    widget = st.progress(0.0, text=f"{label}…")
    t0 = time.perf_counter()

    def progress(a: float, b: float | str = "") -> None:
        if isinstance(b, (int, float)) and not isinstance(b, bool):  # (done, total)
            done, of = float(a), max(float(b), 1.0)
            fraction, message = done / of, f"{label}: {unit or 'step'} {int(done)} of {int(of)}"
        else:
            fraction, message = float(a), str(b) or label
        fraction = min(max(fraction, 0.0), 1.0)
        checkpoint(label)
        left = time_left(time.perf_counter() - t0, fraction)
        widget.progress(fraction, text=message + (f" · {left} left" if left else ""))

    try:
        yield progress
    finally:
        widget.empty()


# ------------------------------------------------------------------------------------------ finished steps
_STEPS_LOCK = threading.Lock()
#: finished steps kept per process (every session's), least recently used dropped first
STEPS_KEPT = 512


@st.cache_resource(show_spinner=False)
def _finished_steps() -> OrderedDict:
    return OrderedDict()


def remembered(key: Hashable, compute: Callable[[], Any]) -> Any:
    """``compute()``'s value, kept for this process under ``key``: a job's finished step, so Cancel keeps it and
    the next Run (of any session) resumes from it. Unlike ``st.cache_data``, ``compute`` may report progress to
    elements drawn outside it, and the value is shared, not copied (results are frozen). ``key`` names
    everything the value depends on (model, device, settings, the images' digests)."""
    store = _finished_steps()
    with _STEPS_LOCK:
        if key in store:
            store.move_to_end(key)
            return store[key]
    value = compute()
    with _STEPS_LOCK:
        store[key] = value
        while len(store) > STEPS_KEPT:
            store.popitem(last=False)
    return value


def forget_steps() -> None:
    """Drop every finished step (tests; a model reloaded with other weights)."""
    with _STEPS_LOCK:
        _finished_steps().clear()


# ------------------------------------------------------------------------------------------ plans
@dataclass(frozen=True)
class Step:
    """One step of a job: ``run(progress)`` returns its part of the result; ``progress(fraction, message)``
    reports inside the step. ``estimate_s``: its expected seconds on this machine (None: unknown)."""

    name: str
    run: Callable[[Callable[[float, str], None]], Any]
    estimate_s: float | None = None


@dataclass(frozen=True)
class Plan:
    """A job: its label (shown to the others in the model's line), its steps and what one step is called."""

    label: str
    steps: tuple[Step, ...]
    unit: str = "image"
    notes: tuple[str, ...] = field(default=())  # said with the estimate ("finished retrainings are kept")

    @property
    def estimate_s(self) -> float | None:
        parts = [s.estimate_s for s in self.steps]
        return None if not parts or any(p is None for p in parts) else float(sum(parts))

    def describe(self) -> str:
        """ "20 images, ≈ 35 s on this machine" (what it will cost, before it starts)."""
        n = len(self.steps)
        units = self.unit if n == 1 else plural(self.unit)
        cost = seconds_text(self.estimate_s)
        text = f"{n} {units}" + (f", {cost} on this machine" if cost else "")
        return "; ".join((text, *self.notes))


def job_button(label: str, *, key: str, plan: Plan | None = None, disabled: bool = False, **button) -> bool:
    """The button that starts a job: the plan's cost beside it, disabled while its job runs.

    Returns True in the run that should start the job. The press is recorded by the button's callback and read
    once here, so the button is drawn disabled in the run that does the work; :func:`run_job` reruns the page
    when the job ends, which draws it enabled again (a job interrupted by another widget leaves no state).
    """
    requested = bool(st.session_state.pop(f"{_REQUESTED}:{key}", False))
    st.button(
        label,
        key=key,
        on_click=_request,
        args=(key,),
        disabled=disabled or requested,
        help=button.pop("help", None),
        type=button.pop("type", "primary"),
        icon=button.pop("icon", ":material/play_arrow:"),
        **button,
    )
    if plan is not None and not requested:
        st.caption(f"**Cost:** {plan.describe()}.")
    notice = st.session_state.pop(f"{_NOTICE}:{key}", None)
    if notice is not None:
        kind, message = notice
        getattr(st, kind)(message)
    return requested and not disabled


def _request(key: str) -> None:
    st.session_state[f"{_REQUESTED}:{key}"] = True


def notify(key: str, kind: str, message: str) -> None:
    """Show ``message`` (``st.<kind>``: error, warning, info, success) once beside the job button ``key``."""
    st.session_state[f"{_NOTICE}:{key}"] = (kind, message)


def run_job(
    plan: Plan,
    *,
    key: str,
    combine: Callable[[list[Any]], Any],
    store: Callable[[Any], None],
    show: Callable[[Any, int], None] | None = None,
    errors: tuple[type[BaseException], ...] = (ValueError,),
    failure: str = "Could not run",
    cancel_message: str = "Cancelled: the finished steps are kept; Run resumes from them.",
    forget: Callable[[], None] | None = None,
    rerun: bool = True,
) -> Any:
    """Run ``plan``'s steps as one job (see the module docstring); ``store(combine(parts))`` at the end.

    ``show(combine(parts so far), k)`` draws the partial result after step ``k`` (no widgets: it is drawn again
    after each step; an element that needs a key, such as a chart, takes one made with ``k``). An error of ``errors`` (a user error: a bad image, a model that fails to
    load) is shown beside the job's button as ``failure: why``, nothing is stored and ``forget()`` drops the
    previous result (so it is not read as the answer to this run). With ``rerun`` the page is run again at the
    end, which draws the stored result and the button enabled. Returns the result.
    """
    if not plan.steps:
        raise ValueError("plan: no steps")
    progress = Progress(plan.label, len(plan.steps), unit=plan.unit, estimate_s=plan.estimate_s)
    slot = st.empty()
    parts: list[Any] = []
    result = None
    try:
        with heavy(plan.label, cancel_message=cancel_message, on_error=lambda m: notify(key, "error", m)):
            for k, step in enumerate(plan.steps):
                progress.step(k, step.name)
                parts.append(step.run(progress.within))
                if show is not None and k + 1 < len(plan.steps):
                    with slot.container():
                        show(combine(parts), k)
            result = combine(parts)
            store(result)
            LOG.info("job %r finished: %d %s in %.1f s", plan.label, len(parts), plan.unit, progress.elapsed_s)
    except (StopException, RerunException) as stop:  # Cancel, another widget, or the session went away
        why = "the page was rerun (Cancel or another control)" if isinstance(stop, RerunException) else "stopped"
        LOG.info(
            "job %r stopped after %d of %d %s: %s", plan.label, len(parts), len(plan.steps), plural(plan.unit), why
        )
        raise
    except errors as err:
        notify(key, "error", f"{failure}: {err}")
        if forget is not None:
            forget()
        result = None
    finally:
        progress.done()
    if rerun:
        st.rerun()
    return result
