"""What the loaded models take, a memory budget over them, and freeing a model when it goes.

A hosted Glimpse keeps one copy of each model for every session (the app's ``st.cache_resource`` loaders).
:class:`ModelLedger` records each loaded model's bytes (its parameters and buffers, counted once when two
modules share a tensor) and when it was last used, per memory pool: ``ram`` for models on the CPU and
``vram`` for models on an accelerator. Admitting a model that would take a pool over its budget first evicts
the least recently used models of that pool; a model larger than the whole budget is refused with
:class:`ModelMemoryError`. :func:`release` frees a model: its line (:class:`glimpse.work_queue.ModelQueue`)
is closed to new work, and once the work already holding or waiting for it is done its tensors move to the
``meta`` device (their storage is freed at once, whoever still refers to the bundle) and the accelerator's
cache is emptied.

Budgets, in MiB: ``GLIMPSE_RAM_BUDGET_MB`` (default: 40 % of the machine's memory) and
``GLIMPSE_VRAM_BUDGET_MB`` (default: 85 % of the first accelerator's memory).
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from models.bundle import ModelLoadError

MiB = 2**20


class ModelMemoryError(ModelLoadError):
    """A model does not fit in its memory budget, or the device ran out of memory; the message says what to do."""


def modules_of(bundle) -> list[nn.Module]:
    """The torch modules a classifier or diffusion bundle holds (a pipeline's components)."""
    model = getattr(bundle, "model", None)
    if isinstance(model, nn.Module):
        return [model]
    pipe = getattr(bundle, "pipe", None)
    if pipe is None:
        return []
    parts = getattr(pipe, "components", None)
    values: Iterable = parts.values() if isinstance(parts, dict) else vars(pipe).values()
    return [v for v in values if isinstance(v, nn.Module)]


def tensor_bytes(modules: Iterable[nn.Module]) -> int:
    """Bytes of the parameters and buffers of ``modules``, each storage counted once (tied weights)."""
    seen: set[tuple[str, int]] = set()
    total = 0
    for module in modules:
        for tensor in (*module.parameters(), *module.buffers()):
            if tensor.device.type == "meta":
                continue
            storage = tensor.untyped_storage()
            key = (str(tensor.device), storage.data_ptr())
            if key in seen:
                continue
            seen.add(key)
            total += storage.nbytes()
    return total


def pool_of(device: torch.device | str) -> str:
    """``ram`` for the CPU, ``vram`` for an accelerator."""
    return "ram" if torch.device(device).type == "cpu" else "vram"


def default_budgets() -> dict[str, int]:
    """The budgets in bytes: the environment's, else 40 % of RAM and 85 % of the first accelerator."""
    budgets = {}
    ram = os.environ.get("GLIMPSE_RAM_BUDGET_MB")
    if ram is not None:
        budgets["ram"] = int(float(ram) * MiB)
    else:
        import psutil

        budgets["ram"] = int(0.4 * psutil.virtual_memory().total)
    vram = os.environ.get("GLIMPSE_VRAM_BUDGET_MB")
    if vram is not None:
        budgets["vram"] = int(float(vram) * MiB)
    elif torch.cuda.is_available():
        budgets["vram"] = int(0.85 * torch.cuda.get_device_properties(0).total_memory)
    else:
        budgets["vram"] = 0
    return budgets


def free_device_memory() -> None:
    """Collect unreachable objects and give the accelerator's cached blocks back to the driver."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def release(bundle, reason: str = "it was unloaded") -> None:
    """Close the bundle's line and free its tensors once the work on it is done (see the module docstring).

    Returns at once; the tensors are freed in this call when the model is idle, otherwise by the thread that
    finishes the last job on it. Any later use of the bundle raises ``ModelUnloaded``.
    """

    def finalise() -> None:
        for module in modules_of(bundle):
            module.to("meta")
        free_device_memory()

    lock = getattr(bundle, "lock", None)
    message = f"{bundle.model_id} was unloaded ({reason}); press the button again to reload it"
    if lock is not None and hasattr(lock, "close"):
        lock.close(message, finalise)
    else:
        finalise()


@dataclass
class Loaded:
    """One loaded model in the ledger."""

    key: str  # "model id|device"
    model_id: str
    device: str
    pool: str
    bytes: int
    loaded_at: float
    last_used: float
    bundle: object
    evict: Callable[[], None]  # removes it from the loader's cache (which then releases it)


class ModelLedger:
    """Loaded models, their bytes and last use, and the least-recently-used eviction under a budget.

    Thread-safe. Eviction callbacks are run outside the ledger's own lock, so a callback that waits for a
    model's line never blocks another session's bookkeeping.
    """

    def __init__(self, budgets: dict[str, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Loaded] = {}
        self.budgets = dict(budgets) if budgets is not None else default_budgets()

    def admit(self, key: str, bundle, evict: Callable[[], None]) -> Loaded:
        """Record ``bundle`` under ``key`` (or mark it used); evict older models to keep its pool in budget.

        Raises ModelMemoryError (after releasing the bundle) when the model alone exceeds the budget.
        """
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.bundle is bundle:
                entry.last_used = now
                return entry
        device = str(bundle.device)
        pool = pool_of(device)
        size = tensor_bytes(modules_of(bundle))
        budget = self.budgets.get(pool, 0)
        if size > budget:
            evict()
            release(bundle, "it does not fit in the memory budget")
            variable = "GLIMPSE_RAM_BUDGET_MB" if pool == "ram" else "GLIMPSE_VRAM_BUDGET_MB"
            raise ModelMemoryError(
                f"{bundle.model_id} takes {size / MiB:.0f} MiB, more than the whole {pool.upper()} budget of "
                f"{budget / MiB:.0f} MiB; choose a smaller model, or raise {variable} when starting the app"
            )
        with self._lock:
            entry = Loaded(key, bundle.model_id, device, pool, size, now, now, bundle, evict)
            self._entries[key] = entry
            victims = []
            used = sum(e.bytes for e in self._entries.values() if e.pool == pool)
            for other in sorted(self._entries.values(), key=lambda e: e.last_used):
                if used <= budget:
                    break
                if other.key == key or other.pool != pool:
                    continue
                victims.append(other)
                used -= other.bytes
                del self._entries[other.key]
        for victim in victims:
            victim.evict()
            release(victim.bundle, f"the memory budget needed room for {bundle.model_id}")
        return entry

    def forget(self, bundle) -> None:
        """Drop the entry of ``bundle`` (it was released by its cache)."""
        with self._lock:
            for key, entry in list(self._entries.items()):
                if entry.bundle is bundle:
                    del self._entries[key]

    def unload(self, key: str) -> bool:
        """Evict and release one model now (the Unload button); False if it is not loaded."""
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is None:
            return False
        entry.evict()
        release(entry.bundle, "someone pressed Unload")
        return True

    def entries(self) -> list[Loaded]:
        """The loaded models, most recently used first."""
        with self._lock:
            return sorted(self._entries.values(), key=lambda e: -e.last_used)

    def used(self, pool: str) -> int:
        with self._lock:
            return sum(e.bytes for e in self._entries.values() if e.pool == pool)


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is the device (or the CPU allocator) running out of memory."""
    if isinstance(err, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
    )
