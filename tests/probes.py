"""What the tests watch beside a result: the hooks left on a model, the global random generators, and a caller
that draws from those generators while other threads work."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import torch
from torch import nn

T = TypeVar("T")


def global_rng_state() -> tuple:
    """A comparable snapshot of torch's CPU generator, NumPy's global generator and Python's ``random``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return torch.get_rng_state().numpy().tobytes(), (kind, keys.tobytes(), pos, has_gauss, cached), random.getstate()


def hook_count(model: nn.Module) -> int:
    """Forward/backward hooks (of every kind) on the model and its submodules."""
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        n += len(getattr(m, "_backward_pre_hooks", {}))
        n += len(getattr(m, "_forward_hooks_with_kwargs", {}))
    return n


def beside_a_drawing_caller(jobs: Sequence[Callable[[], T]]) -> list[T]:
    """Run every job in a thread of its own, all started together, while one more thread seeds torch's and
    NumPy's global generators and checks that what it then draws is exactly what its seed gives: so nothing
    else drew from those generators, or reseeded them, meanwhile.

    Returns the jobs' results in order; re-raises the first error of any thread; fails if the drawing caller
    never got a round in. The global generators are restored afterwards.
    """
    reference_torch = [torch.rand(32, generator=torch.Generator().manual_seed(k)) for k in range(8)]
    reference_numpy = [np.random.RandomState(k).random_sample(32) for k in range(8)]
    results: list = [None] * len(jobs)
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs) + 1)
    stop = threading.Event()
    rounds = [0]

    def work(i: int) -> None:
        try:
            start.wait()
            results[i] = jobs[i]()
        except BaseException as err:  # re-raised in the main thread
            errors.append(err)

    def draw() -> None:
        try:
            start.wait()
            while not stop.is_set():
                k = rounds[0] % 8
                torch.manual_seed(k)
                np.random.seed(k)
                assert torch.equal(torch.rand(32), reference_torch[k])
                assert np.array_equal(np.random.random_sample(32), reference_numpy[k])
                rounds[0] += 1
        except BaseException as err:
            errors.append(err)

    with torch.random.fork_rng():
        state = np.random.get_state()
        workers = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
        drawer = threading.Thread(target=draw)
        for t in [*workers, drawer]:
            t.start()
        for t in workers:
            t.join()
        stop.set()
        drawer.join()
        np.random.set_state(state)
    if errors:
        raise errors[0]
    assert rounds[0] > 0, "the drawing caller never drew while the jobs ran"
    return results
