"""The batch size of batched passes is measured once per model and device, then remembered."""

from __future__ import annotations

import json

import pytest
import torch

from glimpse.saliency import batching, explain
from tests.tiny_models import cnn_bundle, image


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIMPSE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("GLIMPSE_BATCH_SIZE", raising=False)
    monkeypatch.setattr(batching, "_memo", {})
    return tmp_path / batching.CACHE_FILE


def test_choose_takes_the_fastest_per_image_and_the_smaller_of_a_tie():
    assert batching.choose({1: 0.05, 4: 0.02, 8: 0.0104, 16: 0.010}) == 8  # 8 is within 5 % of 16
    assert batching.choose({1: 0.05, 4: 0.02, 8: 0.015, 16: 0.010}) == 16


def test_measured_once_then_read_back_by_a_later_process(fresh, monkeypatch):
    bundle = cnn_bundle()
    calls = []
    real = batching.measure_batch_times

    def counting(b, candidates):
        calls.append(candidates)
        return real(b, candidates)

    monkeypatch.setattr(batching, "measure_batch_times", counting)
    size = batching.batch_size_for(bundle)
    assert size in batching.CANDIDATES["cpu"] and len(calls) == 1
    assert batching.batch_size_for(bundle) == size and len(calls) == 1  # remembered in this process
    stored = json.loads(fresh.read_text())
    assert stored == {batching.device_key(bundle): size}
    monkeypatch.setattr(batching, "_memo", {})  # a new process: the file answers, nothing is measured
    assert batching.batch_size_for(bundle) == size and len(calls) == 1


def test_the_key_names_model_device_torch_and_threads():
    key = batching.device_key(cnn_bundle())
    assert key.startswith("tiny-cnn|cpu:") and torch.__version__ in key and f"threads {torch.get_num_threads()}" in key


def test_an_override_wins_and_a_bad_one_is_named(fresh, monkeypatch):
    monkeypatch.setenv("GLIMPSE_BATCH_SIZE", "3")
    assert batching.batch_size_for(cnn_bundle()) == 3 and not fresh.exists()
    monkeypatch.setenv("GLIMPSE_BATCH_SIZE", "many")
    with pytest.raises(ValueError, match="GLIMPSE_BATCH_SIZE"):
        batching.batch_size_for(cnn_bundle())


def test_explain_batches_with_the_remembered_size(fresh, monkeypatch):
    bundle = cnn_bundle()
    fresh.write_text(json.dumps({batching.device_key(bundle): 3}))
    sizes = []
    handle = bundle.model.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    try:
        explain(bundle, image(), [("smoothgrad", {"samples": 7})], target=0)
    finally:
        handle.remove()
    assert sizes == [2, 3, 2]  # 7 samples in ceil(7 / 3) = 3 passes of nearly equal size


def test_a_panel_of_one_pass_methods_measures_nothing(fresh, monkeypatch):
    monkeypatch.setattr(batching, "measure_batch_times", lambda *a: pytest.fail("measured for a one-pass panel"))
    explain(cnn_bundle(), image(), ["gradient", "gradcam"], target=0)
    assert not fresh.exists()


def test_an_unwritable_cache_still_gives_a_size(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GLIMPSE_CACHE_DIR", str(blocker / "sub"))
    monkeypatch.delenv("GLIMPSE_BATCH_SIZE", raising=False)
    monkeypatch.setattr(batching, "_memo", {})
    assert batching.batch_size_for(cnn_bundle()) >= 1


def test_adaptive_integrated_gradients_places_its_nodes_whatever_the_batch():
    """The refinement adds a fixed number of nodes per round, so a device's batch size changes no node."""
    bundle = cnn_bundle()
    runs = [
        explain(bundle, image(), [("integrated_gradients", {"steps": 40, "tolerance": 0.0})], target=1, batch_size=bs)[
            0
        ]
        for bs in (3, 7, 16)
    ]
    for other in runs[1:]:
        assert other.steps_used == runs[0].steps_used == 40
        assert other.completeness_gap == pytest.approx(runs[0].completeness_gap, abs=1e-6)  # a small difference
        torch.testing.assert_close(
            torch.from_numpy(other.values), torch.from_numpy(runs[0].values), rtol=1e-5, atol=1e-7
        )


def test_the_measurement_stops_once_bigger_batches_stop_paying(monkeypatch):
    """Sizes are timed in increasing order until two in a row are slower per image than the best before them."""
    per_image = {1: 0.05, 2: 0.03, 4: 0.02, 8: 0.021, 12: 0.03, 16: 0.04, 24: 0.01, 32: 0.01}

    def fake_grad(outputs, inputs):  # the pass's time is what per_image says for its batch
        b = inputs.shape[0]
        clock[0] += per_image[b] * b
        return (torch.zeros_like(inputs),)

    clock = [0.0]
    monkeypatch.setattr(batching.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(batching.torch.autograd, "grad", fake_grad)
    times = batching.measure_batch_times(cnn_bundle(), batching.CANDIDATES["cpu"])
    assert list(times) == [1, 2, 4, 8, 12, 16]  # 8 ties with 4 (within TIE: not slower); 12 and 16 are slower
    assert batching.choose(times) == 4


def test_the_measurement_stops_at_its_time_budget(monkeypatch):

    def fake_grad(outputs, inputs):
        clock[0] += 2.0  # every pass takes 2 s: the budget ends the measurement after two sizes
        return (torch.zeros_like(inputs),)

    clock = [0.0]
    monkeypatch.setattr(batching.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(batching.torch.autograd, "grad", fake_grad)
    times = batching.measure_batch_times(cnn_bundle(), batching.CANDIDATES["cpu"])
    assert list(times) == [1, 2]
