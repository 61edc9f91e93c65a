"""Glimpse's default word maps equal DAAM 0.2.0's own maps on a tiny Stable-Diffusion-1.x pipeline.

The pipeline (``tests/reference/daam/tiny_sd15``, 512-px images, 64x64 latent, cross-attention at all four
levels) and DAAM's maps (``daam_reference.npz``) were made by ``tests/reference/daam/make_reference.py``
in a separate virtual environment with DAAM 0.2.0 / diffusers 0.21.2; here the same folder is loaded with
this project's diffusers and traced by :func:`generate_with_attention` with its default options. The
image is compared first, so a failure says whether the sampling or the aggregation differs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from glimpse.attention import generate_with_attention, token_maps, word_maps
from models.diffusion import load_pipeline
from tests.tiny_models import one_thread

REFERENCE = Path(__file__).resolve().parents[2] / "reference" / "daam"
MIN_R = 0.999

_threads = pytest.fixture(autouse=True, scope="module")(one_thread)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64))[0, 1])


@pytest.fixture(scope="module")
def reference():
    # no skip: a missing reference is a broken checkout, not an optional extra
    npz = REFERENCE / "daam_reference.npz"
    assert npz.is_file() and (REFERENCE / "tiny_sd15" / "model_index.json").is_file(), (
        f"DAAM reference missing under {REFERENCE}; re-create it with tests/reference/daam/make_reference.py"
    )
    with np.load(npz, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return arrays, json.loads(str(arrays.pop("meta")))


@pytest.fixture(scope="module")
def runs(reference):
    _, meta = reference
    bundle = load_pipeline(str(REFERENCE / "tiny_sd15"), device="cpu")
    return [
        generate_with_attention(bundle, p["prompt"], seed=p["seed"], steps=meta["steps"], guidance=meta["guidance"])
        for p in meta["prompts"]
    ]


def test_reference_exercises_daams_layer_logic(reference, runs):
    _, meta = reference
    assert meta["daam"] == "0.2.0" and len(meta["prompts"]) >= 3
    for info, run in zip(meta["prompts"], runs):
        trace = run.trace
        # DAAM hooks the 12 down/up attn2 layers (not the mid block) and records none of the 8x8 ones
        # (factor 8: one down, two up layers); Glimpse records exactly the other nine
        assert len(info["layers"]) == 12 and len(trace.layers) == 12 - 3
        assert trace.resolutions() == (16, 32, 64) and trace.grid == 64 and trace.layer_set == "daam"
        assert not any(name.startswith("mid_block") for name in trace.layers)
        assert trace.head_sums is not None and {s.shape[0] for s in trace.head_sums} == {1, 2, 4}
        assert trace.tokens[1:-1] == tuple(info["tokens"])  # the same BPE split on both sides


def test_images_agree(reference, runs):
    arrays, meta = reference
    stride = meta["image_stride"]
    for p, (info, run) in enumerate(zip(meta["prompts"], runs)):
        assert run.image.shape == (*info["image_size"], 3)
        ours = run.image[::stride, ::stride].astype(int)
        assert np.abs(ours - arrays[f"p{p}_image"].astype(int)).max() <= 1, f"sampling differs for {info['prompt']!r}"
        np.testing.assert_allclose(run.image.reshape(-1, 3).mean(0), info["image_channel_means"], atol=0.05)


def test_default_word_maps_equal_daams(reference, runs):
    arrays, meta = reference
    offset, stride = meta["expand_offset"], meta["expand_stride"]
    checked = 0
    for p, (info, run) in enumerate(zip(meta["prompts"], runs)):
        trace = run.trace
        on_grid = word_maps(trace, size=trace.grid)  # DAAM's WordHeatMap.value: the 64x64 grid
        on_image = word_maps(trace)  # DAAM's expand_as(image, absolute=True): bicubic on to 512x512
        assert on_image.shape == (len(trace.words), 512, 512)
        for k, word in enumerate(info["words"]):
            occurrences = [i for i, w in enumerate(trace.words) if w == word]
            if len(occurrences) != 1:
                continue  # DAAM merges a repeated word's occurrences; Glimpse keeps them apart
            i = occurrences[0]
            daam_grid, daam_image = arrays[f"p{p}_word_maps"][k], arrays[f"p{p}_word_maps_expanded"][k]
            r_grid = pearson(on_grid[i], daam_grid)
            r_image = pearson(on_image[i][offset::stride, offset::stride], daam_image)
            assert r_grid >= MIN_R and r_image >= MIN_R, (info["prompt"], word, r_grid, r_image)
            # not only correlated: the same raw values (float16 per-step storage is not used here)
            np.testing.assert_allclose(on_grid[i], daam_grid, rtol=1e-4, atol=1e-5 * float(daam_grid.max()))
            checked += 1
    assert checked >= 20


def test_token_maps_equal_daams_global_heat_map(reference, runs):
    arrays, _ = reference
    for p, run in enumerate(runs):
        ours = token_maps(run.trace, size=run.trace.grid)
        theirs = arrays[f"p{p}_token_maps"]  # compute_global_heat_map(): start token, prompt tokens, end token
        assert ours.shape == theirs.shape
        assert min(pearson(a, b) for a, b in zip(ours, theirs)) >= MIN_R
