"""One first-come-first-served queue per shared model: the lock that heavy work on it is done under.

A shared model (one object serving every session of a hosted app) is used under its lock (house rule 4). A
plain ``threading.RLock`` gives no order, no way to see who waits, and no way to leave the line: a session
that keeps asking can overtake one that has waited for a minute. :class:`ModelQueue` is a drop-in
replacement (``with queue:``, ``acquire``/``release``, reentrant for the thread that holds it) that

- grants the model in ticket order (first come, first served), so no session can starve another;
- tells a waiter its position and an estimate of the wait (:meth:`ModelQueue.status`), through a callback
  the waiting thread installs with :func:`job` (the app redraws "position 2, about 6 s" there);
- lets a waiter leave the line: an exception raised by that callback (Streamlit's stop when the user
  presses Cancel) removes its ticket, and the next waiter moves up;
- can be closed when its model is unloaded: new work is refused with :class:`ModelUnloaded`, work already
  holding or waiting for the model finishes, and a finaliser (which frees the model's memory) runs once the
  model is idle.

Only one thread holds a queue at a time, so maps computed under it are the ones a serial run gives.
"""

from __future__ import annotations

import contextlib
import contextvars
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

#: How often a waiting thread wakes to report its position (seconds).
POLL_S = 0.2


class ModelUnloaded(RuntimeError):
    """The model was unloaded (memory budget or the Unload button) while this work was asking for it."""


@dataclass(frozen=True)
class Job:
    """What a waiting thread is about to do: shown to the others in the line."""

    label: str = "work"
    session: str = ""  # who asked (the app's session id); empty outside the app
    estimate_s: float | None = None  # the caller's estimate of how long it holds the model


@dataclass(frozen=True)
class QueueStatus:
    """One moment of a queue, as seen by one ticket (or by nobody: ``position`` None)."""

    name: str
    running: Job | None  # the job holding the model
    running_for_s: float
    waiting: tuple[Job, ...]  # in the order they will run
    position: int | None  # 1 = next to run; None for a ticket that is not waiting
    wait_s: float | None  # estimated seconds until this ticket runs; None when nothing is known

    def describe(self) -> str:
        """One line for a waiting session: position, what runs now, the estimate."""
        if self.position is None:
            return f"{self.name}: {len(self.waiting)} waiting"
        ahead = "" if self.running is None else f"; now running: {self.running.label}"
        eta = "" if self.wait_s is None else f", about {self.wait_s:.0f} s"
        return f"Waiting for {self.name}: position {self.position} of {len(self.waiting)}{eta}{ahead}"


@dataclass(eq=False)
class _Ticket:
    job: Job
    thread: int
    since: float = field(default_factory=time.monotonic)


_current_job: contextvars.ContextVar[tuple[Job, Callable[[QueueStatus], None] | None] | None] = contextvars.ContextVar(
    "glimpse_job", default=None
)


@contextlib.contextmanager
def job(
    label: str,
    *,
    session: str = "",
    estimate_s: float | None = None,
    on_wait: Callable[[QueueStatus], None] | None = None,
) -> Iterator[None]:
    """Describe the work this thread does next on any queue, and how to report while it waits.

    ``on_wait(status)`` is called about every :data:`POLL_S` seconds while the thread waits in a line; an
    exception it raises removes the ticket and propagates (that is how a waiting session cancels).
    """
    token = _current_job.set((Job(label, session, estimate_s), on_wait))
    try:
        yield
    finally:
        _current_job.reset(token)


class ModelQueue:
    """A reentrant first-come-first-served lock with a visible line (see the module docstring).

    >>> q = ModelQueue("demo")
    >>> with q:
    ...     q.status().running.label
    'work'
    """

    def __init__(self, name: str = "model", history: int = 20) -> None:
        self.name = name
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._running: _Ticket | None = None
        self._line: deque[_Ticket] = deque()
        self._durations: dict[str, deque[float]] = {}
        self._history = history
        self._closed: str | None = None
        self._finaliser: Callable[[], None] | None = None

    # ------------------------------------------------------------------ the lock protocol
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = threading.get_ident()
        context = _current_job.get()
        work, on_wait = context if context is not None else (Job(), None)
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            if self._closed is not None:
                raise ModelUnloaded(self._closed)
            ticket = _Ticket(work, me)
            if self._owner is None and not self._line:
                self._grant(ticket)
                return True
            if not blocking:
                return False
            self._line.append(ticket)
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        try:
            while True:
                with self._cond:
                    if self._owner is None and self._line[0] is ticket:
                        self._line.popleft()
                        self._grant(ticket)
                        return True
                    wait = POLL_S if deadline is None else min(POLL_S, max(0.0, deadline - time.monotonic()))
                    self._cond.wait(wait)
                    granted = self._owner is None and self._line[0] is ticket
                if granted:
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    self._leave(ticket)
                    return False
                if on_wait is not None:
                    on_wait(self.status(ticket))
        except BaseException:
            self._leave(ticket)
            raise

    def release(self) -> None:
        finalise = None
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError(f"{self.name}: released by a thread that does not hold it")
            self._depth -= 1
            if self._depth:
                return
            ticket = self._running
            if ticket is not None:
                took = time.monotonic() - ticket.since
                self._durations.setdefault(ticket.job.label, deque(maxlen=self._history)).append(took)
            self._owner, self._running = None, None
            if self._closed is not None and not self._line:
                finalise, self._finaliser = self._finaliser, None
            self._cond.notify_all()
        if finalise is not None:
            finalise()

    def yield_turn(self) -> bool:
        """Between two steps of a long hold, let everyone waiting go first: a thread that holds the queue once (not
        nested inside another hold) and has others in the line releases it and queues again at the end, so a
        waiting click runs after one step, not after the whole job. Returns whether it yielded. Call it only
        where nothing of this job is installed on the model (hooks removed, weights as they were).

        >>> q = ModelQueue("demo")
        >>> with q:
        ...     q.yield_turn()  # nobody waits: keeps it
        False
        """
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError(f"{self.name}: yield_turn by a thread that does not hold it")
            if self._depth != 1 or not self._line:
                return False
        self.release()
        self.acquire()  # as the same job (the caller's job() context), at the end of the line
        return True

    def __enter__(self) -> ModelQueue:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _grant(self, ticket: _Ticket) -> None:
        self._owner, self._depth = ticket.thread, 1
        ticket.since = time.monotonic()
        self._running = ticket

    def _leave(self, ticket: _Ticket) -> None:
        finalise = None
        with self._cond:
            if ticket in self._line:
                self._line.remove(ticket)
            if self._closed is not None and self._owner is None and not self._line:
                finalise, self._finaliser = self._finaliser, None
            self._cond.notify_all()
        if finalise is not None:
            finalise()

    # ------------------------------------------------------------------ what a session sees
    def typical_s(self, label: str) -> float | None:
        """Median of the last holds of jobs with this label (None before the first)."""
        with self._cond:
            past = self._durations.get(label)
            return statistics.median(past) if past else None

    def _estimate(self, work: Job) -> float | None:
        if work.estimate_s is not None:
            return work.estimate_s
        past = self._durations.get(work.label)
        return statistics.median(past) if past else None

    def status(self, ticket: _Ticket | None = None) -> QueueStatus:
        """The line now; with ``ticket``, its position (1 = next) and estimated wait."""
        with self._cond:
            now = time.monotonic()
            running = self._running
            line = list(self._line)
            position = line.index(ticket) + 1 if ticket is not None and ticket in line else None
            wait: float | None = None
            if position is not None:
                parts = [] if running is None else [self._estimate(running.job)]
                parts += [self._estimate(t.job) for t in line[: position - 1]]
                if all(p is not None for p in parts):
                    wait = sum(parts) - (now - running.since if running is not None else 0.0)
                    # past the estimate (a job with other settings than the earlier ones of its label), the
                    # estimate says nothing: no number rather than "about 0 s" for the rest of the wait
                    wait = wait if wait > 0.5 else None
            return QueueStatus(
                name=self.name,
                running=None if running is None else running.job,
                running_for_s=0.0 if running is None else now - running.since,
                waiting=tuple(t.job for t in line),
                position=position,
                wait_s=wait,
            )

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._owner is not None or bool(self._line)

    # ------------------------------------------------------------------ unloading
    @property
    def closed(self) -> bool:
        return self._closed is not None

    def close(self, reason: str, finaliser: Callable[[], None] | None = None) -> None:
        """Refuse new work with ``ModelUnloaded(reason)``; run ``finaliser`` once the model is idle.

        Work that already holds or waits for the model finishes first. When the model is idle now, the
        finaliser runs in this call; otherwise in the thread that lets go of it last. Closing twice keeps
        the first reason and finaliser.
        """
        run_now = None
        with self._cond:
            if self._closed is not None:
                return
            self._closed, self._finaliser = reason, finaliser
            if self._owner is None and not self._line:
                run_now, self._finaliser = self._finaliser, None
        if run_now is not None:
            run_now()

    def __repr__(self) -> str:
        return f"ModelQueue({self.name!r})"
