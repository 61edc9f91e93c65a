"""Hooks never outlive a call (also when the model raises), nothing leaks, and a panel costs one pass."""

from __future__ import annotations

import gc

import pytest
import torch
from torch import nn

from glimpse.saliency import SHARED, explain
from tests.probes import hook_count
from tests.tiny_models import FAST_PARAMS, TinyCNN, any_model_methods, cnn_bundle, image


class Bomb(nn.Module):
    """Identity that raises on its ``fuse``-th call (mid-run: after hooks are installed)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.fuse = 1

    def forward(self, x):
        self.calls += 1
        if self.calls >= self.fuse:
            raise RuntimeError("boom")
        return x


class Exploding(TinyCNN):
    def __init__(self) -> None:
        super().__init__()
        self.bomb = Bomb()

    def forward(self, x):
        return super().forward(self.bomb(x))


@pytest.mark.parametrize("name", any_model_methods())
def test_hooks_are_removed_when_the_model_raises(name):
    bundle = cnn_bundle(Exploding())
    # With an explicit target, the first forward explain() makes is the method's own, under its hooks.
    bundle.model.bomb.fuse = 1
    with pytest.raises(RuntimeError, match="boom"):
        explain(bundle, image(), [(name, FAST_PARAMS.get(name, {}))], target=1)
    assert hook_count(bundle.model) == 0


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_hundred_calls_leave_no_hooks_and_no_memory_growth():
    bundle = cnn_bundle()
    img = image()
    panel = ["gradient", "gradcam", "guided_backprop", "deeplift"]
    for _ in range(5):
        explain(bundle, img, panel, target=0)
    gc.collect()
    before = _rss_mb()
    for _ in range(100):
        explain(bundle, img, panel, target=0)
    gc.collect()
    assert hook_count(bundle.model) == 0
    assert _rss_mb() - before < 25.0


def test_panel_pays_one_forward_and_one_backward():
    bundle = cnn_bundle()
    calls = {"forward": 0, "backward": 0}
    fwd = bundle.model.register_forward_hook(lambda *a: calls.__setitem__("forward", calls["forward"] + 1))
    bwd = bundle.model.conv1.register_full_backward_hook(
        lambda *a: calls.__setitem__("backward", calls["backward"] + 1)
    )
    try:
        panel = list(SHARED)  # every method the registry says the shared pass answers
        maps = explain(bundle, image(), panel, target=2)
    finally:
        fwd.remove()
        bwd.remove()
    assert len(maps) == len(panel)
    assert calls == {"forward": 1, "backward": 1}
    assert set(panel) >= {
        "gradient", "gradient_abs", "input_x_gradient", "gradcam", "hirescam", "xgradcam", "layercam",
        "gradcampp", "normgrad", "normgrad_selective",
    }  # fmt: skip


def test_noisy_samples_run_batched():
    bundle = cnn_bundle()
    sizes = []
    h = bundle.model.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    try:
        explain(bundle, image(), [("smoothgrad", {"samples": 20})], target=0, batch_size=8)
        explain(bundle, image(), [("integrated_gradients", {"steps": 16})], target=0, batch_size=8)
    finally:
        h.remove()
    assert sizes[:3] == [7, 6, 7]  # smoothgrad: 20 samples in 3 batched passes of nearly equal size
    assert sizes[3:5] == [8, 8]  # integrated gradients: 16 path points in 2 batched passes
    assert torch.is_grad_enabled()
