"""Every lesson's figure computed before anyone asks for it: a teacher in front of a class cannot wait.

The first open of the Lessons page (or the server's start, with ``GLIMPSE_WARM_LESSONS=1``) starts one
background thread per process that fills the lessons' caches with each figure at its default controls, in
lesson order. It yields to people: before each figure it waits until the models that figure uses are idle,
and each figure takes their lines only as its library calls do (a pass group, a generation), so a click from
any session waits one of those at most. What it computed is what the figures then read from the caches.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

import streamlit as st

from components import loaders
from components.lessons import (
    CAMS,
    CLASSIFIER,
    DIGITS,
    PROMPT,
    RELATION_SAMPLES,
    ROBUST_IMAGE,
    ROBUST_METHOD,
    SANITY_IMAGE,
    SANITY_METHODS,
    SMOOTHGRAD_DEFAULT,
    T2I,
    services,
)

LOG = logging.getLogger("glimpse.lessons")
#: longest wait for idle models before a figure is computed anyway (seconds)
IDLE_WAIT_S = 30.0


def figures(device: str) -> list[tuple[str, tuple[str, ...], Callable[[], object]]]:
    """(lesson key, the models it uses, compute its default figure) for every lesson, in order."""
    classifier, digits, t2i = (CLASSIFIER,), DIGITS, (T2I,)
    return [
        ("smoothgrad", classifier, lambda: services.smoothgrad_maps(device, *SMOOTHGRAD_DEFAULT)),
        ("sanity", digits[:1], lambda: [services.sanity(device, m, SANITY_IMAGE) for m in SANITY_METHODS]),
        ("robust", digits, lambda: [services.digit_map(m, device, ROBUST_IMAGE, ROBUST_METHOD) for m in digits]),
        ("cams", classifier, lambda: [services.cam_map(device, m, t) for t in services.extremes(device) for m in CAMS]),
        ("complexity", (), lambda: services.ratings("SAVOIAS Scenes")),
        ("red", t2i, lambda: services.attention(device, PROMPT, 0)),  # lessons 6 and 7 share it
        ("relations", t2i, lambda: services.relation_scores(device, PROMPT, RELATION_SAMPLES, 0)),
    ]


def _idle(models: tuple[str, ...], device: str) -> bool:
    bundles = [loaders.pipeline(m, device) if m == T2I else loaders.classifier(m, device) for m in models]
    return not any(b.lock.busy for b in bundles)


#: set when the process exits: the warm-up stops before its next figure (torch aborts the process when an
#: interpreter exits while a thread is inside it)
_STOP = threading.Event()


def warm(device: str, *, idle_wait_s: float = IDLE_WAIT_S) -> list[str]:
    """Compute every lesson's default figure (see the module docstring); returns the keys done, in order."""
    done = []
    for key, models, compute in figures(device):
        deadline = time.monotonic() + idle_wait_s
        while models and not _idle(models, device) and time.monotonic() < deadline and not _STOP.is_set():
            time.sleep(0.25)
        if _STOP.is_set():
            break
        t0 = time.perf_counter()
        try:
            compute()
        except Exception:  # a lesson that cannot be warmed is computed when opened, with its error shown there
            LOG.exception("lesson warm-up: %s failed", key)
            continue
        LOG.info("lesson warm-up: %s in %.1f s", key, time.perf_counter() - t0)
        done.append(key)
    return done


def enabled() -> bool:
    """Off with ``GLIMPSE_WARM_LESSONS=0`` (the test suite: it calls :func:`warm` itself)."""
    return os.environ.get("GLIMPSE_WARM_LESSONS", "") != "0"


@st.cache_resource(show_spinner=False)
def start(device: str) -> threading.Thread | None:
    """The warm-up thread of this process and device (started once; later calls return it), joined at exit."""
    if not enabled():
        return None
    thread = threading.Thread(target=warm, args=(device,), name=f"glimpse-lesson-warmup-{device}", daemon=True)
    thread.start()
    atexit.register(_stop, thread)
    return thread


def _stop(thread: threading.Thread) -> None:
    _STOP.set()
    thread.join(timeout=120)
