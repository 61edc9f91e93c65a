"""DAAM aggregation (Tang et al. 2023) on hand-built traces: known values and an explicit reimplementation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glimpse.attention import LAYER_SETS, AttentionTrace, token_maps, word_maps, word_mass_over_time
from glimpse.attention.daam import daam_factor, daam_grid, daam_skipped_sides


def make_trace(layer_maps, *, heads=False, tokens=("<s>", "a", "red", "ci", "rcle", "</s>"), image_shape=(16, 16)):
    return AttentionTrace(
        prompt="a red circle",
        tokens=tokens,
        words=("a", "red", "circle"),
        word_tokens=((1,), (2,), (3, 4)),
        timesteps=np.arange(layer_maps[0].shape[0])[::-1] * 100,
        layers=tuple(f"block{i}.attn2" for i in range(len(layer_maps))),
        layer_maps=tuple(m.astype(np.float16) for m in layer_maps),
        model_id="hand-built",
        seed=0,
        steps=layer_maps[0].shape[0],
        guidance=4.0,
        image_shape=image_shape,
        heads=heads,
    )


def constant_trace():
    """Token k has probability c_k (layer 0) and 2 c_k (layer 1) at every position and step."""
    c = np.array([0.1, 0.2, 0.3, 0.15, 0.05, 0.2], dtype=np.float32)
    T = 4
    layer0 = np.broadcast_to(c[None, :, None, None], (T, 6, 4, 4)).copy()
    layer1 = np.broadcast_to(2 * c[None, :, None, None], (T, 6, 8, 8)).copy()
    return make_trace([layer0, layer1]), c, T


def test_constant_maps_give_the_known_daam_value():
    trace, c, T = constant_trace()
    tokens = token_maps(trace)
    assert tokens.shape == (6, 16, 16) and tokens.dtype == np.float32
    # sum over T steps, bicubic keeps constants, mean over the two layers: T * (c + 2c) / 2
    np.testing.assert_allclose(tokens, np.broadcast_to((T * 1.5 * c)[:, None, None], tokens.shape), rtol=2e-3)
    words = word_maps(trace, size=5)
    assert words.shape == (3, 5, 5)
    expected = T * 1.5 * np.array([c[1], c[2], (c[3] + c[4]) / 2])  # a word is the mean of its sub-tokens
    np.testing.assert_allclose(words[:, 2, 2], expected, rtol=2e-3)


def test_timestep_layer_and_resolution_slices():
    trace, c, T = constant_trace()
    np.testing.assert_allclose(token_maps(trace, timesteps=slice(0, 2))[:, 0, 0], 2 * 1.5 * c, rtol=2e-3)
    # an inclusive (first, last) pair of step indices, as a range slider gives it
    np.testing.assert_allclose(token_maps(trace, timesteps=(1, 3))[:, 0, 0], 3 * 1.5 * c, rtol=2e-3)
    np.testing.assert_allclose(token_maps(trace, resolutions=[8])[:, 0, 0], T * 2 * c, rtol=2e-3)
    np.testing.assert_allclose(token_maps(trace, layers=["block0.attn2"])[:, 0, 0], T * c, rtol=2e-3)
    with pytest.raises(ValueError, match="timesteps"):
        token_maps(trace, timesteps=(2, 9))
    with pytest.raises(ValueError, match="layers: unknown"):
        token_maps(trace, layers=["nope"])
    with pytest.raises(ValueError, match="resolutions"):
        token_maps(trace, resolutions=[32])
    with pytest.raises(ValueError, match="heads"):
        token_maps(trace, heads=[0])


def daam_reference(layer_maps, size, t_idx, head_idx=None):
    """DAAM's recipe written out per (layer, head): sum over t, bicubic upsample, clamp >= 0, then mean."""
    keys = []
    for m in layer_maps:  # (T, heads, K, h, w)
        for head in range(m.shape[1]) if head_idx is None else head_idx:
            summed = torch.tensor(m[t_idx, head].astype(np.float32)).sum(0)  # (K, h, w)
            up = F.interpolate(summed[None], size=(size, size), mode="bicubic", align_corners=False)[0]
            keys.append(up.clamp(min=0))
    return torch.stack(keys).mean(0).numpy()


def test_heads_path_equals_explicit_daam():
    rng = np.random.default_rng(0)
    raw = [rng.dirichlet(np.ones(6), size=(5, 3, s, s)).transpose(0, 1, 4, 2, 3) for s in (4, 8)]  # (T, H, K, h, w)
    trace = make_trace(raw, heads=True)
    fp16 = [m.astype(np.float16) for m in raw]
    np.testing.assert_allclose(token_maps(trace, size=16), daam_reference(fp16, 16, np.arange(5)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        token_maps(trace, size=12, timesteps=slice(1, 4), heads=[0, 2]),
        daam_reference(fp16, 12, np.arange(1, 4), head_idx=[0, 2]),
        rtol=1e-5,
        atol=1e-6,
    )
    words = word_maps(trace, size=16)
    tokens = token_maps(trace, size=16)
    np.testing.assert_allclose(words[2], (tokens[3] + tokens[4]) / 2, rtol=1e-6)


def test_head_averaged_trace_counts_one_key_per_layer():
    rng = np.random.default_rng(1)
    raw = [rng.dirichlet(np.ones(6), size=(3, 2, s, s)).transpose(0, 1, 4, 2, 3) for s in (4, 8)]
    averaged = make_trace([m.mean(1) for m in raw])
    reference = daam_reference([m.mean(1, keepdims=True).astype(np.float16) for m in raw], 16, np.arange(3))
    np.testing.assert_allclose(token_maps(averaged), reference, rtol=1e-5, atol=1e-6)


def test_word_mass_over_time_is_a_share_of_attention():
    rng = np.random.default_rng(2)
    raw = [rng.dirichlet(np.ones(6), size=(4, s, s)).transpose(0, 3, 1, 2) for s in (4, 8)]  # rows sum to 1
    trace = make_trace(raw)
    mass = word_mass_over_time(trace)
    assert mass.shape == (3, 4) and mass.dtype == np.float32
    per_token = np.mean([m.astype(np.float32).mean(axis=(-2, -1)) for m in trace.layer_maps], axis=0).T  # (K, T)
    np.testing.assert_allclose(mass[2], per_token[3] + per_token[4], rtol=1e-5)
    np.testing.assert_allclose(per_token.sum(0), 1.0, atol=2e-3)  # every token kept: shares add up to one
    assert word_mass_over_time(trace, timesteps=(1, 2)).shape == (3, 2)


def test_daam_grid_factor_and_skipped_sides():
    assert daam_grid(512) == daam_grid(1024) == 64  # SD 1.x and SDXL aggregate on 64x64
    assert daam_grid(768) == daam_grid(256) == 96  # anything else on 96x96
    assert [daam_factor(s * s, 64) for s in (64, 32, 16, 8)] == [1, 2, 4, 8]
    assert daam_skipped_sides(64) == (8,) and daam_skipped_sides(96) == (11, 12)
    assert LAYER_SETS == ("daam", "all")


def head_trace(*, grid=None, image_shape=(16, 16), steps=3):
    """Peaked per-head maps (Dirichlet α = 0.05; bicubic upsampling undershoots zero) with their all-step sums."""
    rng = np.random.default_rng(7)
    per_step, sums = [], []
    for side, heads in ((4, 2), (8, 3)):
        p = rng.dirichlet(np.full(6, 0.05), size=(steps, heads, side, side)).transpose(0, 1, 4, 2, 3)
        p = p.astype(np.float16).astype(np.float32)
        per_step.append(p.mean(1))  # head-averaged (T, K, h, w)
        sums.append(p.sum(0))  # (heads, K, h, w), every step
    trace = make_trace(per_step, image_shape=image_shape)
    return replace(trace, head_sums=tuple(sums), grid=grid), sums, per_step


def test_clamp_acts_per_head_with_the_head_sums():
    trace, sums, per_step = head_trace()
    ups = [F.interpolate(torch.from_numpy(s), size=(16, 16), mode="bicubic", align_corners=False) for s in sums]
    assert min(float(u.min()) for u in ups) < -0.05  # the case where the clamp's place matters
    per_head = torch.cat([u.clamp(min=0) for u in ups]).mean(0).numpy()  # mean over the 2 + 3 (layer, head) keys
    np.testing.assert_allclose(token_maps(trace), per_head, rtol=1e-5, atol=1e-6)
    head_mean = token_maps(replace(trace, head_sums=None))  # one key per layer, clamp after the head mean
    assert np.abs(head_mean - per_head).max() > 1e-2
    # a step range cannot use the all-step sums: head means, clamped after the mean, weighted by heads
    part = token_maps(trace, timesteps=(0, 1))
    keys = []
    for m, s in zip(per_step, sums):
        up = F.interpolate(
            torch.from_numpy(m[:2].astype(np.float16).astype(np.float32).sum(0))[None],
            size=(16, 16),
            mode="bicubic",
            align_corners=False,
        )
        keys.append(up.clamp(min=0)[0] * s.shape[0])
    np.testing.assert_allclose(part, (sum(keys) / 5).numpy(), rtol=1e-4, atol=1e-5)


def test_maps_go_to_the_grid_then_to_the_output():
    trace, sums, _ = head_trace(grid=12, image_shape=(40, 40))
    on_grid = token_maps(trace, size=12)
    ups = [F.interpolate(torch.from_numpy(s), size=(12, 12), mode="bicubic", align_corners=False) for s in sums]
    expected_grid = torch.cat([u.clamp(min=0) for u in ups]).mean(0)
    np.testing.assert_allclose(on_grid, expected_grid.numpy(), rtol=1e-5, atol=1e-6)
    # the second stage is a plain bicubic resize of the grid map (no second clamp), as DAAM's expand_as
    expected = F.interpolate(expected_grid[None], size=(40, 40), mode="bicubic", align_corners=False)[0].numpy()
    np.testing.assert_allclose(token_maps(trace), expected, rtol=1e-5, atol=1e-6)
    direct = token_maps(replace(trace, grid=None))  # straight to 40x40: another map
    assert direct.shape == expected.shape and np.abs(direct - expected).max() > 1e-3
    words = word_maps(trace)
    np.testing.assert_allclose(words[2], (token_maps(trace)[3] + token_maps(trace)[4]) / 2, rtol=1e-5, atol=1e-7)
