"""The per-model line: first come first served, visible positions, leaving the line, closing for unload."""

from __future__ import annotations

import threading
import time

import pytest

from glimpse.work_queue import ModelQueue, ModelUnloaded, job


def _wait_until(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def _line(q: ModelQueue) -> list[str]:
    return [j.label for j in q.status().waiting]


def test_waiters_are_served_in_the_order_they_came():
    q = ModelQueue("m")
    order = []

    def worker(name):
        with job(name), q:
            order.append(name)

    q.acquire()
    threads = []
    for name in "abcde":
        t = threading.Thread(target=worker, args=(name,))
        t.start()
        threads.append(t)
        _wait_until(lambda n=name: _line(q)[-1:] == [n])
    assert _line(q) == list("abcde")
    q.release()
    for t in threads:
        t.join(5)
    assert order == list("abcde")
    assert not q.busy


def test_a_session_that_keeps_asking_cannot_overtake_one_that_waits():
    q = ModelQueue("m")
    events = []
    stop = threading.Event()

    def greedy():
        while not stop.is_set():
            with job("greedy"), q:
                events.append("greedy")
                time.sleep(0.002)

    g = threading.Thread(target=greedy)
    g.start()
    _wait_until(lambda: events.count("greedy") > 3)

    def patient():
        with job("patient"), q:
            events.append("patient")

    joined_at = len(events)
    p = threading.Thread(target=patient)
    p.start()
    p.join(5)
    stop.set()
    g.join(5)
    assert "patient" in events
    # it ran at most one greedy turn (the one holding the model when it joined) after joining
    assert events[joined_at:].index("patient") <= 2


def test_reentrant_for_the_holder_and_refused_to_others():
    q = ModelQueue("m")
    with q:
        with q:
            assert q.status().running is not None
        got = []
        t = threading.Thread(target=lambda: got.append(q.acquire(blocking=False)))
        t.start()
        t.join()
        assert got == [False]
    assert not q.busy
    with pytest.raises(RuntimeError, match="does not hold"):
        q.release()


def test_a_waiter_sees_its_position_and_an_estimate_that_shrinks():
    q = ModelQueue("m")
    seen = []
    q.acquire()  # the main thread runs a job estimated by the label's history: teach it one
    q.release()
    with job("long", estimate_s=2.0):
        q.acquire()

    def waiter(name, est):
        with job(name, estimate_s=est, on_wait=lambda s: seen.append((name, s.position, s.wait_s, s.describe()))), q:
            pass

    a = threading.Thread(target=waiter, args=("a", 1.0))
    a.start()
    _wait_until(lambda: _line(q) == ["a"])
    b = threading.Thread(target=waiter, args=("b", 1.0))
    b.start()
    _wait_until(lambda: len([s for s in seen if s[0] == "b"]) >= 2 and len([s for s in seen if s[0] == "a"]) >= 2)
    q.release()
    a.join(5)
    b.join(5)
    a_seen = [s for s in seen if s[0] == "a"]
    b_seen = [s for s in seen if s[0] == "b"]
    assert {s[1] for s in a_seen} == {1}
    assert b_seen[0][3].startswith("Waiting for m: position 2 of 2, about ") and b_seen[0][3].endswith(
        "now running: long"
    )
    assert b_seen[0][1] == 2
    # b waits for the running job (2 s estimated) and for a (1 s): about 3 s at first, less later
    assert 2.0 < b_seen[0][2] <= 3.0
    assert a_seen[-1][2] < a_seen[0][2] <= 2.0


def test_leaving_the_line_frees_the_slot_for_the_next():
    q = ModelQueue("m")
    q.acquire()
    errors, order = [], []

    class Cancelled(Exception):
        pass

    cancel = threading.Event()

    def quitter():
        def on_wait(status):
            if cancel.is_set():
                raise Cancelled

        try:
            with job("quitter", on_wait=on_wait), q:
                order.append("quitter")
        except Cancelled:
            errors.append("cancelled")

    def stayer():
        with job("stayer"), q:
            order.append("stayer")

    t1 = threading.Thread(target=quitter)
    t1.start()
    _wait_until(lambda: _line(q) == ["quitter"])
    t2 = threading.Thread(target=stayer)
    t2.start()
    _wait_until(lambda: _line(q) == ["quitter", "stayer"])
    cancel.set()
    _wait_until(lambda: _line(q) == ["stayer"])
    assert q.status().waiting[0].label == "stayer"
    q.release()
    t1.join(5)
    t2.join(5)
    assert errors == ["cancelled"] and order == ["stayer"]
    assert not q.busy


def test_timeout_leaves_the_line():
    q = ModelQueue("m")
    q.acquire()
    got = []
    t = threading.Thread(target=lambda: got.append(q.acquire(timeout=0.3)))
    t.start()
    t.join(5)
    assert got == [False] and _line(q) == []
    q.release()


def test_closing_refuses_new_work_and_frees_after_the_running_job():
    q = ModelQueue("m")
    freed = []
    q.acquire()
    waiting = []

    def queued():
        with q:
            waiting.append(freed == [])  # queued before the close: still runs, before the finaliser

    t = threading.Thread(target=queued)
    t.start()
    _wait_until(lambda: len(q.status().waiting) == 1)
    q.close("m was unloaded", lambda: freed.append(True))
    assert q.closed and freed == []
    with q:  # the holder may re-enter
        pass
    failed = []

    def late():
        try:
            q.acquire()
        except ModelUnloaded as err:
            failed.append(str(err))

    t2 = threading.Thread(target=late)
    t2.start()
    t2.join(5)
    assert failed == ["m was unloaded"]
    q.release()
    t.join(5)
    assert waiting == [True] and freed == [True]


def test_closing_an_idle_queue_frees_at_once_and_only_once():
    q = ModelQueue("m")
    freed = []
    q.close("gone", lambda: freed.append(1))
    q.close("again", lambda: freed.append(2))
    assert freed == [1]
    with pytest.raises(ModelUnloaded, match="gone"):
        q.acquire()


def test_a_long_hold_yields_its_turn_to_a_waiter_between_steps():
    """A job holding the model over many steps lets a click that arrived meanwhile run after the current step."""
    import threading
    import time

    from glimpse.work_queue import ModelQueue

    q = ModelQueue("m")
    order: list[str] = []
    waiting = threading.Event()

    def click() -> None:
        waiting.set()
        with q:
            order.append("click")

    with q:
        order.append("step 1")
        worker = threading.Thread(target=click)
        worker.start()
        waiting.wait(5)
        while not q.status().waiting:
            time.sleep(0.01)
        assert q.yield_turn()
        order.append("step 2")
        assert not q.yield_turn()  # nobody waits now
    worker.join(5)
    assert order == ["step 1", "click", "step 2"]
    with q, q:
        assert not q.yield_turn()  # nested: the outer hold is the caller's to give up
