"""The memory ledger: sizes, least-recently-used eviction under a budget, refusal, and freeing after work."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from glimpse.work_queue import ModelUnloaded
from models.memory import MiB, ModelLedger, ModelMemoryError, is_out_of_memory, release, tensor_bytes
from models.registry import ClassifierBundle


def bundle(name: str, width: int) -> ClassifierBundle:
    model = nn.Sequential(nn.Flatten(), nn.Linear(width, width, bias=False)).eval()  # width² float32
    return ClassifierBundle(
        model_id=name,
        model=model,
        labels=tuple(str(i) for i in range(width)),
        input_size=(1, 1),
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        target_layers=("1",),
        device=torch.device("cpu"),
    )


def freed(b: ClassifierBundle) -> bool:
    return all(p.device.type == "meta" for p in b.model.parameters())


def test_tied_weights_are_counted_once():
    a = nn.Linear(512, 512, bias=False)
    b = nn.Linear(512, 512, bias=False)
    b.weight = a.weight
    assert tensor_bytes([a, b]) == 512 * 512 * 4
    assert tensor_bytes([nn.Sequential(a, b)]) == 512 * 512 * 4


def test_least_recently_used_models_make_room():
    ledger = ModelLedger({"ram": 3 * MiB, "vram": 0})
    evicted = []
    one, two, three = bundle("one", 512), bundle("two", 512), bundle("three", 512)  # 1 MiB each
    ledger.admit("one", one, lambda: evicted.append("one"))
    ledger.admit("two", two, lambda: evicted.append("two"))
    ledger.admit("three", three, lambda: evicted.append("three"))
    assert ledger.used("ram") == 3 * MiB and evicted == []
    ledger.admit("one", one, lambda: evicted.append("one"))  # used again: "two" is now the oldest
    four = bundle("four", 512)
    ledger.admit("four", four, lambda: evicted.append("four"))
    assert evicted == ["two"]
    assert [e.key for e in ledger.entries()] == ["four", "one", "three"]
    assert freed(two) and not freed(one)
    with pytest.raises(ModelUnloaded, match="two was unloaded"):
        two.predict(torch.zeros(1, 1, 3, dtype=torch.uint8).numpy())


def test_a_model_bigger_than_the_budget_is_refused_and_freed():
    ledger = ModelLedger({"ram": MiB // 2, "vram": 0})
    big = bundle("big", 512)
    evicted = []
    with pytest.raises(
        ModelMemoryError, match=r"big takes 1 MiB, more than the whole RAM budget of 0 MiB.*GLIMPSE_RAM"
    ):
        ledger.admit("big", big, lambda: evicted.append("big"))
    assert evicted == ["big"] and freed(big) and ledger.entries() == []


def test_unloading_a_model_in_use_waits_for_its_work():
    ledger = ModelLedger({"ram": 8 * MiB, "vram": 0})
    b = bundle("busy", 256)
    ledger.admit("busy", b, lambda: None)
    inside, done = threading.Event(), threading.Event()
    result = []

    def work():
        with b.lock:
            inside.set()
            done.wait(5)
            result.append(b.model(torch.ones(1, 256)).sum().item())  # still usable: not freed under it

    t = threading.Thread(target=work)
    t.start()
    inside.wait(5)
    assert ledger.unload("busy") is True
    assert not freed(b) and ledger.entries() == []
    done.set()
    t.join(5)
    assert result and freed(b)
    assert ledger.unload("busy") is False


def test_release_is_idempotent():
    b = bundle("x", 64)
    release(b)
    release(b)
    assert freed(b)


def test_a_real_allocation_failure_is_recognised():
    with pytest.raises(RuntimeError) as info:
        torch.empty(2**50, dtype=torch.uint8)
    assert is_out_of_memory(info.value)
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
