"""generate_with_attention through a real diffusers StableDiffusionPipeline built from tiny configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glimpse.attention import generate_with_attention, token_maps, word_maps
from models.diffusion import bundle_from_pipeline
from tests.tiny_models import one_thread, tiny_sd_pipeline

_threads = pytest.fixture(autouse=True, scope="module")(one_thread)


@pytest.fixture(scope="module")
def bundle():
    return bundle_from_pipeline(tiny_sd_pipeline(), "tiny-sd", torch.device("cpu"))


def test_bundle_describes_the_pipeline(bundle):
    assert bundle.kind == "unet" and bundle.max_tokens == 12 and bundle.resolution == 16
    assert bundle.vocabulary is None and (bundle.default_steps, bundle.default_guidance) == (30, 7.5)


def test_sub_tokens_are_grouped_into_words(bundle):
    result = generate_with_attention(bundle, "a red dog", seed=0, steps=2)
    trace = result.trace
    assert trace.tokens == ("<|startoftext|>", "a</w>", "red</w>", "d", "o", "g</w>", "<|endoftext|>")
    assert trace.words == ("a", "red", "dog") and trace.word_tokens == ((1,), (2,), (3, 4, 5))
    cross = {n.removesuffix(".processor") for n in bundle.pipe.unet.attn_processors if ".attn2." in n}
    # DAAM's layers: down and up blocks, not the mid block; a 16-px model aggregates on DAAM's 96x96 grid
    assert set(trace.layers) == {n for n in cross if not n.startswith("mid_block")} and len(trace.timesteps) == 2
    assert trace.grid == 96 and trace.layer_set == "daam"
    tokens, words = token_maps(trace), word_maps(trace)
    assert words.shape == (3, 16, 16)
    np.testing.assert_allclose(words[2], tokens[3:6].mean(0), rtol=1e-6)
    plain = bundle.pipe(
        "a red dog",
        num_inference_steps=2,
        guidance_scale=7.5,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    )
    expected = (np.clip(plain.images[0], 0, 1) * 255).round().astype(np.uint8)
    assert np.abs(result.image.astype(int) - expected.astype(int)).max() <= 1


def test_over_long_prompt_states_the_limit(bundle):
    with pytest.raises(ValueError, match="at most 12"):
        generate_with_attention(bundle, "a red dog with a red cat", steps=1)


def test_all_layers_keeps_the_mid_block_on_the_same_grid(bundle):
    daam = generate_with_attention(bundle, "a red dog", seed=0, steps=2).trace
    every = generate_with_attention(bundle, "a red dog", seed=0, steps=2, layers="all").trace
    assert set(every.layers) - set(daam.layers) == {"mid_block.attentions.0.transformer_blocks.0.attn2"}
    assert every.layer_set == "all" and every.grid == daam.grid == 96 and every.resolutions() == (4, 8)
    assert daam.resolutions() == (8,)
    maps = word_maps(every)
    assert maps.shape == (3, 16, 16) and not np.allclose(maps, word_maps(daam))
