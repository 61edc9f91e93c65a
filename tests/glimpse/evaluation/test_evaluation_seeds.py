"""The sanity check and deletion/insertion are reproducible bit for bit and never touch a global generator,
also while other threads draw from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from glimpse.evaluation import deletion_insertion, randomisation_check
from glimpse.evaluation.sanity import _reinitialise
from tests.probes import beside_a_drawing_caller, global_rng_state
from tests.tiny_models import CascadeCNN, cascade_bundle, noise_image


def test_sanity_check_same_seed_same_result_and_global_generators_untouched():
    bundle = cascade_bundle()  # (the test helper seeds torch's generator to build its model)
    before = global_rng_state()
    # SmoothGrad: the maps draw noise too, through explain's own generators.
    runs = [
        randomisation_check(bundle, noise_image(24), "smoothgrad", target=1, stages=3, seed=s, params={"samples": 3})
        for s in (4, 4, 5)
    ]
    assert global_rng_state() == before
    np.testing.assert_array_equal(runs[0].maps, runs[1].maps)
    np.testing.assert_array_equal(runs[0].spearman, runs[1].spearman)
    assert not np.array_equal(runs[0].maps[1:], runs[2].maps[1:])


def test_reinitialisation_draws_what_the_seeded_global_generator_would():
    # The private generator gives, on the CPU, exactly the weights reset_parameters gives after
    # torch.manual_seed(seed) — the behaviour this check had when it seeded the global generator.
    ours, theirs = CascadeCNN(), CascadeCNN()
    theirs.load_state_dict(ours.state_dict())
    with torch.no_grad():
        _reinitialise(ours, torch.Generator().manual_seed(9))
        with torch.random.fork_rng():
            torch.manual_seed(9)
            for m in theirs.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), name


class DirectDraw(nn.Module):
    """Initialises with tensor methods, not torch.nn.init (as some timm layers do)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(4, 4))
        self.scale = nn.Parameter(torch.zeros(4))

    def reset_parameters(self) -> None:
        self.weight.data.normal_(0.0, 0.02)
        with torch.no_grad():
            self.scale.copy_(torch.rand(4))


class DropoutInit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(8))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.copy_(F.dropout(torch.ones(8), 0.5, training=True))


def test_every_draw_of_a_custom_reset_goes_to_the_private_generator():
    before = global_rng_state()
    a, b = DirectDraw(), DirectDraw()
    with torch.no_grad():
        _reinitialise(a, torch.Generator().manual_seed(1))
        _reinitialise(b, torch.Generator().manual_seed(1))
    assert global_rng_state() == before
    assert torch.equal(a.weight, b.weight) and torch.equal(a.scale, b.scale)
    assert a.weight.abs().sum() > 0 and a.scale.abs().sum() > 0
    with pytest.raises(ValueError, match="only draws from torch's global generator"), torch.no_grad():
        _reinitialise(DropoutInit(), torch.Generator().manual_seed(1))


def test_deletion_insertion_reproducible_and_global_generators_untouched():
    bundle = cascade_bundle()
    values = np.random.default_rng(0).normal(size=(24, 24)).astype(np.float32)
    before = global_rng_state()
    a = deletion_insertion(bundle, noise_image(24), values, target=1, steps=6)
    again = deletion_insertion(bundle, noise_image(24), values, target=1, steps=6)
    b = deletion_insertion(bundle, noise_image(24), values, target=1, steps=6, batch_size=3)
    assert global_rng_state() == before
    # the same call gives the same curves bit for bit
    np.testing.assert_array_equal(a.deletion_scores, again.deletion_scores)
    np.testing.assert_array_equal(a.insertion_scores, again.insertion_scores)
    # another batch size gives the same curves up to float32 rounding: a convolution's kernel (and so the order
    # of its sums) may depend on the batch size (CI once differed by 3e-8 at one point)
    np.testing.assert_allclose(a.deletion_scores, b.deletion_scores, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(a.insertion_scores, b.insertion_scores, rtol=1e-5, atol=1e-7)


def test_sanity_checks_in_threads_match_serial_runs_and_leave_a_drawing_caller_alone():
    bundle = cascade_bundle()  # built up front: the test helper seeds torch's generator

    def check(seed):
        return randomisation_check(bundle, noise_image(24), "gradient_shap", target=0, stages=3, seed=seed).maps

    serial = {s: check(s) for s in (1, 2)}
    # re-initialisation neither draws from a drawing caller's global generators nor redirects its draws
    got = beside_a_drawing_caller([lambda s=s: [check(s), check(s)] for s in (1, 2)])
    for seed, repeats in zip((1, 2), got):
        for maps in repeats:
            np.testing.assert_array_equal(maps, serial[seed])
