"""Each session's computed results: bounded in entries and bytes, and expiring, so a long class stays small.

Pages keep what a button computed (maps, generations, scores, bundles to download) here rather than directly
in ``st.session_state``. The store is one :class:`BoundedResults` per session; it keeps the most recently
used entries within ``GLIMPSE_SESSION_RESULTS`` entries (default 32) and ``GLIMPSE_SESSION_MB`` MiB (default
256), and forgets an entry nobody read for ``GLIMPSE_RESULT_TTL_MIN`` minutes (default 120). An evicted
result is simply computed again (most come back from the shared caches) when its button is pressed.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np
import streamlit as st

STATE_KEY = "_glimpse_results"
MiB = 2**20


def size_of(value, _depth: int = 0) -> int:
    """Approximate bytes held by ``value``: numpy arrays, bytes, strings, containers and dataclasses."""
    if _depth > 12:
        return 0
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(size_of(k, _depth + 1) + size_of(v, _depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return sum(size_of(v, _depth + 1) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(size_of(getattr(value, f.name, None), _depth + 1) for f in dataclasses.fields(value))
    if hasattr(value, "__dict__"):
        return sum(size_of(v, _depth + 1) for v in vars(value).values())
    return sys.getsizeof(value)


def _env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class BoundedResults:
    """An LRU map with an entry limit, a byte limit and an idle expiry (see the module docstring)."""

    def __init__(self, max_entries: int, max_bytes: int, ttl_s: float) -> None:
        self.max_entries, self.max_bytes, self.ttl_s = max_entries, max_bytes, ttl_s
        self._items: OrderedDict[Hashable, tuple[object, int, float]] = OrderedDict()

    def _expire(self, now: float) -> None:
        for key in [k for k, (_, _, t) in self._items.items() if now - t > self.ttl_s]:
            del self._items[key]

    def put(self, key: Hashable, value) -> None:
        now = time.monotonic()
        self._expire(now)
        self._items.pop(key, None)
        self._items[key] = (value, size_of(value), now)
        while len(self._items) > self.max_entries or (len(self._items) > 1 and self.bytes > self.max_bytes):
            self._items.popitem(last=False)

    def get(self, key: Hashable, default=None):
        now = time.monotonic()
        self._expire(now)
        item = self._items.get(key)
        if item is None:
            return default
        self._items[key] = (item[0], item[1], now)
        self._items.move_to_end(key)
        return item[0]

    def pop(self, key: Hashable, default=None):
        item = self._items.pop(key, None)
        return default if item is None else item[0]

    def __contains__(self, key: Hashable) -> bool:
        self._expire(time.monotonic())
        return key in self._items

    def keys(self) -> list[Hashable]:
        self._expire(time.monotonic())
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return sum(b for _, b, _ in self._items.values())


def store() -> BoundedResults:
    """This session's result store (created on first use with the environment's limits)."""
    found = st.session_state.get(STATE_KEY)
    if found is None:
        found = BoundedResults(
            max_entries=int(_env("GLIMPSE_SESSION_RESULTS", 32)),
            max_bytes=int(_env("GLIMPSE_SESSION_MB", 256) * MiB),
            ttl_s=_env("GLIMPSE_RESULT_TTL_MIN", 120) * 60,
        )
        st.session_state[STATE_KEY] = found
    return found


def put(key: Hashable, value) -> None:
    store().put(key, value)


def get(key: Hashable, default=None):
    return store().get(key, default)


def pop(key: Hashable, default=None):
    return store().pop(key, default)


def has(key: Hashable) -> bool:
    return key in store()
