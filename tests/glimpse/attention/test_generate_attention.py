"""generate_with_attention on the embedded pipeline class with a tiny random UNet (16x16, two resolutions)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from glimpse.attention import generate_with_attention, word_maps
from models.diffusion import bundle_from_pipeline
from tests.tiny_models import one_thread, tiny_shapes_pipeline

from .tracefixture import runs_twice

_threads = pytest.fixture(autouse=True, scope="module")(one_thread)
PROMPT = "a red circle to the left of a blue square"


@pytest.fixture(scope="module")
def bundle():
    return bundle_from_pipeline(tiny_shapes_pipeline(), "tiny-shapes", torch.device("cpu"))


@pytest.fixture(scope="module")
def result(bundle):
    return generate_with_attention(bundle, PROMPT, seed=3, steps=3)


def test_trace_describes_the_prompt(bundle, result):
    trace = result.trace
    assert result.image.dtype == np.uint8 and result.image.shape == (16, 16, 3)
    assert trace.words == tuple(PROMPT.split())
    assert trace.tokens == ("[CLS]", *PROMPT.split(), "[SEP]")
    assert all(trace.tokens[i] == w for (i,), w in zip(trace.word_tokens, trace.words))
    assert len(trace.timesteps) == 3 and np.all(np.diff(trace.timesteps) < 0)  # generation order
    # the default layer set ("daam") on the embedded model: down- and up-block layers at every resolution
    cross = {n.removesuffix(".processor") for n in bundle.pipe.unet.attn_processors if ".attn2." in n}
    assert set(trace.layers) == {n for n in cross if not n.startswith("mid_block")} and trace.layer_set == "daam"
    assert trace.resolutions() == (4, 8) and trace.grid == 16  # pixel space: aggregated on the image grid
    assert (trace.model_id, trace.seed, trace.steps, trace.guidance) == ("tiny-shapes", 3, 3, bundle.default_guidance)
    assert word_maps(trace).shape == (len(trace.words), 16, 16)


def test_tracing_does_not_change_the_image(bundle, result):
    plain = bundle.pipe(
        PROMPT,
        num_inference_steps=3,
        guidance_scale=bundle.default_guidance,
        generator=torch.Generator().manual_seed(3),
    )
    expected = (np.clip(plain.images[0], 0, 1) * 255).round().astype(np.uint8)
    assert np.abs(result.image.astype(int) - expected.astype(int)).max() <= 1  # fused SDPA: float rounding only


def test_only_the_conditional_half_is_recorded(bundle, result):
    # at the first step both runs see the same noise; without guidance the batch is the conditional sample only
    single = generate_with_attention(bundle, PROMPT, seed=3, steps=3, guidance=1.0)
    for a, b in zip(result.trace.layer_maps, single.trace.layer_maps):
        np.testing.assert_allclose(a[0].astype(np.float32), b[0].astype(np.float32), atol=2e-3)


def test_all_layers_adds_the_mid_block(bundle, result):
    every = generate_with_attention(bundle, PROMPT, seed=3, steps=3, layers="all").trace
    cross = {n.removesuffix(".processor") for n in bundle.pipe.unet.attn_processors if ".attn2." in n}
    assert set(every.layers) == cross and any(n.startswith("mid_block") for n in every.layers)
    assert every.layer_set == "all" and every.grid == result.trace.grid
    for name, maps in zip(result.trace.layers, result.trace.layer_maps):  # the shared layers record the same
        np.testing.assert_allclose(every.layer_maps[every.layers.index(name)], maps, atol=1e-3)
    assert word_maps(every).shape == word_maps(result.trace).shape
    with pytest.raises(ValueError, match=r"layers: unknown 'mid'; known: daam, all"):
        generate_with_attention(bundle, PROMPT, steps=1, layers="mid")


def test_memory_is_tokens_times_resolutions_times_steps(bundle, result):
    trace = result.trace
    K, T = len(trace.tokens), len(trace.timesteps)
    unet = bundle.pipe.unet
    heads = {n: unet.get_submodule(n).heads for n in trace.layers}
    per_step = sum(T * K * m.shape[-2] * m.shape[-1] * 2 for m in trace.layer_maps)  # float16, heads averaged
    head_sums = sum(heads[n] * K * m.shape[-2] * m.shape[-1] * 4 for n, m in zip(trace.layers, trace.layer_maps))
    assert trace.nbytes == per_step + head_sums  # the per-head sums do not grow with T
    text_len = bundle.pipe.tokenizer.model_max_length
    full_cross = sum(
        T * 2 * heads[n] * (m.shape[-2] * m.shape[-1]) * text_len * 4 for n, m in zip(trace.layers, trace.layer_maps)
    )
    full_self = sum(
        T * 2 * heads[n] * (m.shape[-2] * m.shape[-1]) ** 2 * 4 for n, m in zip(trace.layers, trace.layer_maps)
    )
    assert trace.nbytes * 10 < full_cross + full_self


def test_progress_and_resolution_filter(bundle):
    calls = []
    res = generate_with_attention(
        bundle, "a green triangle", steps=2, resolutions=[8], progress=lambda i, n: calls.append((i, n))
    )
    assert calls == [(1, 2), (2, 2)]
    assert res.trace.resolutions() == (8,)
    with pytest.raises(ValueError, match=r"resolutions: \[5\] match no cross-attention layer; this model has \[4, 8\]"):
        generate_with_attention(bundle, "a green triangle", steps=1, resolutions=[5])


def test_a_step_count_the_layers_did_not_record_is_an_error(bundle):
    with runs_twice(bundle.pipe.unet), pytest.raises(RuntimeError, match="4 denoiser calls recorded for 2 steps"):
        generate_with_attention(bundle, "a green triangle", steps=2)
    with pytest.raises(ValueError, match="layers: unknown .most."):
        generate_with_attention(bundle, "a green triangle", steps=1, layers="most")


def test_failure_mid_generation_restores_processors_and_lock(bundle):
    before = dict(bundle.pipe.unet.attn_processors)

    def fail(i, n):
        raise RuntimeError("user stopped at step 1")

    with pytest.raises(RuntimeError, match="user stopped"):
        generate_with_attention(bundle, "a green triangle", steps=3, progress=fail)
    assert all(bundle.pipe.unet.attn_processors[n] is p for n, p in before.items())
    free = []
    worker = threading.Thread(target=lambda: free.append(bundle.lock.acquire(blocking=False)))
    worker.start()
    worker.join()
    assert free == [True]


@pytest.mark.parametrize(
    "prompt, message",
    [
        ("   ", r"prompt: empty; .* at most 16 tokens"),
        (" ".join(["a red circle"] * 5), r"at most 16 tokens"),
        ("a purple circle", r"unknown words \['purple'\]"),
    ],
)
def test_bad_prompts_are_refused_with_the_limit(bundle, prompt, message):
    with pytest.raises(ValueError, match=message):
        generate_with_attention(bundle, prompt, steps=1)


def test_bad_steps(bundle):
    with pytest.raises(ValueError, match="steps: 0 must be >= 1"):
        generate_with_attention(bundle, "a red circle", steps=0)
