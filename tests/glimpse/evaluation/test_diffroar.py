"""DiffROAR: the masks it keeps, its sign on a data set where the discriminative pixels are known, and its cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from glimpse.evaluation.diffroar import diffroar, keep_masks, plot_png


def test_keep_masks_keep_the_fraction_asked_and_break_ties_at_random():
    maps = np.random.default_rng(0).normal(size=(5, 8, 6))
    top, bottom = keep_masks(maps, 0.25, "top"), keep_masks(maps, 0.75, "bottom")
    assert top.sum(axis=(1, 2)).tolist() == [12] * 5
    assert (top ^ bottom).all()  # the top quarter and the bottom three quarters tile each image
    for i in range(5):
        assert np.abs(maps[i])[top[i]].min() >= np.abs(maps[i])[~top[i]].max()
    flat = np.zeros((2, 8, 8))
    a, b = keep_masks(flat, 0.5, "top", seed=0), keep_masks(flat, 0.5, "top", seed=1)
    assert a.sum() == 64 and not np.array_equal(a, b)  # a flat map keeps a random half, not the first rows
    assert 10 < a[0, :4].sum() < 22
    with pytest.raises(ValueError, match="^side"):
        keep_masks(flat, 0.5, "middle")
    with pytest.raises(ValueError, match="^k"):
        keep_masks(flat, 0.0, "top")


def _toy(n: int, seed: int):
    """1×4×4 images of noise; pixel (0, 0) is white for label 1 and black for label 0: the only evidence."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, 4, 4)).astype(np.float32)
    y = rng.integers(0, 2, n)
    x[:, 0, 0, 0] = y
    return x, y.astype(np.int64)


def _linear() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))


SIGNAL = np.zeros((4, 4), np.float32)
SIGNAL[0, 0] = 1.0


def _curve(maps_of, **options):
    (train_x, train_y), (test_x, test_y) = _toy(400, 0), _toy(200, 1)
    made = []

    def make() -> nn.Module:
        made.append(1)
        return _linear()

    result = diffroar(
        make,
        train_x,
        train_y,
        test_x,
        test_y,
        np.broadcast_to(maps_of, (400, 4, 4)).copy(),
        np.broadcast_to(maps_of, (200, 4, 4)).copy(),
        normalise=lambda t: t - 0.5,
        levels=(0.125,),
        seeds=(0, 1),
        epochs=20,
        lr=0.05,
        **options,
    )
    return result, len(made)


def test_a_map_on_the_evidence_scores_positive_and_one_that_avoids_it_negative():
    right, _ = _curve(SIGNAL + np.random.default_rng(2).random((4, 4)) * 0.1)
    wrong, _ = _curve(1.0 - SIGNAL)  # the evidence ranked last
    assert right.diffroar.mean() > 0.3 and wrong.diffroar.mean() < -0.3
    assert right.accuracy["top"].mean() > 0.9  # pixel (0, 0) alone decides
    row = right.rows()[0]
    assert row["k"] == 0.125 and row["diffroar"] == pytest.approx(right.diffroar.mean())
    assert right.meta()["benchmark"] == "diffroar" and plot_png([right, wrong])[:4] == b"\x89PNG"


class Stopped(Exception):
    """Stands for the user stopping a run (Cancel, Ctrl-C)."""


def test_finished_retrainings_are_cached_and_an_interrupted_run_resumes(tmp_path):
    calls = []

    def stop_after_two(fraction: float, message: str) -> None:
        calls.append(message)
        if len(calls) == 3:  # before the third retraining
            raise Stopped

    with pytest.raises(Stopped):
        _curve(SIGNAL, cache_dir=tmp_path, progress=stop_after_two)
    resumed, made = _curve(SIGNAL, cache_dir=tmp_path)
    assert made == 2  # four cells (1 level × 2 sides × 2 seeds), two already done
    again, made = _curve(SIGNAL, cache_dir=tmp_path)
    assert made == 0 and np.array_equal(again.diffroar, resumed.diffroar)
    fresh, _ = _curve(SIGNAL)
    np.testing.assert_array_equal(fresh.diffroar, resumed.diffroar)  # deterministic from the seeds


def test_maps_must_match_the_images():
    (x, y), (tx, ty) = _toy(10, 0), _toy(10, 1)
    with pytest.raises(ValueError, match="^train_maps"):
        diffroar(_linear, x, y, tx, ty, np.zeros((10, 3, 3)), np.zeros((10, 4, 4)), normalise=torch.nn.Identity())


@pytest.mark.slow
def test_retrainings_in_worker_processes_give_the_same_curve_and_cache(tmp_path):
    (x, y), (tx, ty) = _toy(400, 0), _toy(200, 1)
    maps = np.random.default_rng(3).random((600, 4, 4)).astype(np.float32)
    maps[:, 0, 0] += 0.5

    def curve(**options):
        return diffroar(
            _linear,  # a module-level function: the worker processes import it
            x,
            y,
            tx,
            ty,
            maps[:400],
            maps[400:],
            normalise=lambda t: t - 0.5,
            levels=(0.125, 0.5),
            seeds=(0, 1),
            epochs=5,
            lr=0.05,
            **options,
        )

    messages = []
    parallel = curve(workers=2, cache_dir=tmp_path, progress=lambda f, m: messages.append((f, m)))
    serial = curve()
    for side in ("top", "bottom"):
        np.testing.assert_allclose(parallel.accuracy[side], serial.accuracy[side])
    assert sum(" done (" in m for _, m in messages) == 8 and messages[-1] == (1.0, "done")
    again = []
    cached = curve(workers=2, cache_dir=tmp_path, progress=lambda f, m: again.append(m))
    assert again == ["done"]  # nothing retrained, no worker started
    np.testing.assert_array_equal(cached.diffroar, parallel.diffroar)
