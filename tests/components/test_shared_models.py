"""Models shared by every session: the budget, the gauge, Unload, and the session's bounded results."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from components import loaders
from components.session_results import BoundedResults, size_of
from tests.apptest_support import APP, open_page, stored


@pytest.fixture
def fresh_ledger(monkeypatch):
    """A new process-wide ledger whose budgets come from the environment this test sets."""

    def make(ram_mb: str):
        monkeypatch.setenv("GLIMPSE_RAM_BUDGET_MB", ram_mb)
        loaders.ledger.clear()

    yield make
    monkeypatch.delenv("GLIMPSE_RAM_BUDGET_MB", raising=False)
    loaders.ledger.clear()


def test_a_model_over_the_budget_is_refused_clearly_and_the_app_keeps_working(fresh_ledger):
    fresh_ledger("5")  # EfficientNet-Lite0 takes about 18 MiB; the BlockDigits CNNs well under 1
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("app_pages/saliency.py").run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert "efficientnet-lite0 takes 18 MiB, more than the whole RAM budget of 5 MiB" in error
    assert "GLIMPSE_RAM_BUDGET_MB" in error and "Pick another one in the sidebar" in error
    at.sidebar.selectbox(key="glimpse_embedded_pick").set_value("blockdigits-standard").run()
    assert not at.exception and not at.error
    next(b for b in at.button if b.label == "Compute").click().run()
    assert not at.exception and not at.error
    assert stored(at, "saliency_result").model_id == "blockdigits-standard"
    assert [e.model_id for e in loaders.ledger().entries()] == ["blockdigits-standard"]


@pytest.mark.slow
def test_the_gauge_lists_loaded_models_and_unload_frees_one(fresh_ledger):
    fresh_ledger("4096")
    at = open_page("app_pages/saliency.py")
    at.run()  # the sidebar is drawn before the page loads the model: the next run shows it
    gauge = next(e for e in at.sidebar.expander if e.label.startswith("Models in memory"))
    assert gauge.label == "Models in memory (1)"
    assert any("`efficientnet-lite0` · cpu · 17.9 MiB" in m.value and "idle" in m.value for m in gauge.markdown)
    bundle = loaders.classifier("efficientnet-lite0", "cpu")
    next(b for b in gauge.button if b.label == "Unload").click().run()
    assert not at.exception
    assert bundle.lock.closed and all(p.device.type == "meta" for p in bundle.model.parameters())
    # the page that needs it loads it again, as a new object
    assert loaders.classifier("efficientnet-lite0", "cpu") is not bundle
    assert not at.run().exception


def test_session_results_are_bounded_in_entries_bytes_and_time(monkeypatch):
    results = BoundedResults(max_entries=3, max_bytes=1000, ttl_s=60)
    for k in range(5):
        results.put(k, np.zeros(10, np.uint8))
    assert results.keys() == [2, 3, 4]
    results.get(2)  # used: the oldest is now 3
    results.put("big", np.zeros(900, np.uint8))  # 3 is the least recently used
    assert results.keys() == [4, 2, "big"] and results.bytes == 920
    results.put("big2", np.zeros(500, np.uint8))  # over 1000 bytes: the oldest go until it fits
    assert results.keys() == ["big2"]
    results.put("huge", np.zeros(5000, np.uint8))  # over the byte limit alone: kept as the only entry
    assert results.keys() == ["huge"]
    clock = [100.0]
    monkeypatch.setattr("components.session_results.time.monotonic", lambda: clock[0])
    results.put("fresh", 1)
    clock[0] += 61
    assert results.get("fresh") is None and len(results) == 0


def test_size_of_counts_arrays_inside_results():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class R:
        maps: tuple
        name: str

    assert size_of(R((np.zeros((4, 4), np.float32), np.zeros(8, np.uint8)), "ab")) == 64 + 8 + 2
    assert size_of({"a": b"xyz"}) == 1 + 3


def test_running_out_of_memory_mid_job_is_explained_and_releases_the_model():
    def script():
        import streamlit as st
        import torch

        from components import jobs
        from glimpse.work_queue import ModelQueue

        line = st.session_state.setdefault("line", ModelQueue("tiny"))
        if st.button("Go"):
            with jobs.heavy("the big job"), line:
                torch.empty(2**50, dtype=torch.uint8)  # a real allocation failure of the CPU allocator
        st.write("page still here")

    at = AppTest.from_function(script, default_timeout=60).run()
    at.button[0].click().run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert error.startswith("Out of memory while computing the big job:") and "can't allocate memory" in error
    assert "try fewer methods" in error and "\n" not in error
    assert not at.session_state["line"].busy
    assert at.markdown[-1].value == "page still here"
    at.run()
    assert not at.exception and not at.error


def test_malloc_arenas_are_capped_on_glibc(monkeypatch):
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's mallopt is Linux-only")
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    loaders.limit_malloc_arenas.clear()
    assert loaders.limit_malloc_arenas() is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # the operator's own setting wins
    loaders.limit_malloc_arenas.clear()
    assert loaders.limit_malloc_arenas() is False
    loaders.limit_malloc_arenas.clear()


def test_startup_objects_are_frozen_after_the_run_and_new_garbage_is_still_collected():
    """Streamlit's collection after each run skips what was alive at start-up (gc.freeze, once the calling run
    has ended, so that run's own objects are not frozen) but still frees later reference cycles."""
    import gc
    import threading
    import weakref

    class Node:
        pass

    loaders.freeze_startup_objects.clear()
    waiter = []
    try:
        gc.unfreeze()
        run = threading.Thread(target=lambda: waiter.append(loaders.freeze_startup_objects()))
        run.start()
        run.join()
        waiter[0].join(timeout=60)
        assert not waiter[0].is_alive() and gc.get_freeze_count() > 0
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: refcounting alone never frees it
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
        loaders.freeze_startup_objects.clear()
