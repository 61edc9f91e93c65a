"""The adapters on real pipelines: the embedded model (v-prediction, pixel space), a tiny Stable Diffusion
(ε-prediction, latent) and a tiny SD3 (flow matching), all built from configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glimpse.diffusion_classifier import FlowMatching, NoisePrediction, adapter_for, classify
from tests.tiny_models import (
    noise_image,
    one_thread,
    tiny_flux_pipeline,
    tiny_sd3_pipeline,
    tiny_sd_pipeline,
    tiny_sdxl_pipeline,
)

_threads = pytest.fixture(autouse=True, scope="module")(one_thread)


@pytest.fixture(scope="module")
def embedded():
    from models.diffusion import load_pipeline

    return load_pipeline("shapes-t2i", device="cpu")


def test_the_embedded_model_is_scored_in_v_and_its_words_are_checked(embedded):
    model = adapter_for(embedded.pipe, embedded.model_id)
    assert isinstance(model, NoisePrediction) and model.parameterisation == "v_prediction"
    assert model.pixel_space and model.resolution == 32
    x0 = model.encode_image(noise_image(40))  # any size: resized to the model's 32 px, pixels in [-1, 1]
    assert x0.shape == (1, 3, 32, 32) and -1 <= float(x0.min()) and float(x0.max()) <= 1
    noise = torch.randn_like(x0)
    t = 600
    x_t, v = model.noised(x0, noise, t)
    a = float(model.alphas_cumprod[t])
    # v's definition, and x₀ recovered from (x_t, v) as the sampler does
    torch.testing.assert_close(v, a**0.5 * noise - (1 - a) ** 0.5 * x0)
    torch.testing.assert_close(a**0.5 * x_t - (1 - a) ** 0.5 * v, x0, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown words"):
        model.check_prompt("a purple hexagon")
    assert model.check_prompt(" A red Circle. ") == "a red circle"  # what it encodes, so repeats are caught
    with pytest.raises(ValueError, match="each candidate once"):
        classify(model, noise_image(32), ["a red circle", "A red circle."], samples=2)
    with pytest.raises(ValueError, match="empty"):
        model.check_prompt("   ")


def test_a_drawn_scene_beats_its_hard_negatives_on_the_embedded_model(embedded):
    from glimpse.diffusion_classifier import hard_negatives
    from glimpse.evaluation.shapes_scenes import HELD_OUT_SPECS, render_scene

    spec = HELD_OUT_SPECS[0]
    image = render_scene(spec, np.random.default_rng(1)).image
    prompts = [spec.text] + [text for _, text in hard_negatives(spec.text)]
    result = classify(adapter_for(embedded.pipe), image, prompts, samples=10)
    assert result.prompts[result.prediction] == spec.text
    assert result.errors.shape == (6, 10) and result.stage_maps.shape == (1, 6, 32, 32)


def test_a_tiny_stable_diffusion_is_scored_in_epsilon_on_its_latents():
    pipe = tiny_sd_pipeline()
    model = adapter_for(pipe, "tiny-sd")
    assert isinstance(model, NoisePrediction) and model.parameterisation == "epsilon" and not model.pixel_space
    x0 = model.encode_image(noise_image(24))  # resized to the model's 16 px, then encoded to its 8×8 latent
    assert x0.shape == (1, 4, model.resolution // 2, model.resolution // 2)
    result = classify(model, noise_image(24), ["a red dog", "a red cat", "a dog"], samples=3)
    assert result.errors.shape == (3, 3) and np.isfinite(result.errors).all()
    assert result.denoiser_calls == 3 and result.stage_maps.shape[2:] == x0.shape[2:]
    with pytest.raises(ValueError, match="at most 12"):
        model.check_prompt("a very long prompt that the tiny tokenizer cannot hold")


def test_a_tiny_sdxl_gets_its_pooled_text_and_time_ids():
    pipe = tiny_sdxl_pipeline()
    model = adapter_for(pipe, "tiny-sdxl")
    assert isinstance(model, NoisePrediction) and model.xl and model.parameterisation == "epsilon"
    cond = model.encode_prompts(["a red dog", "a dog"])
    assert cond["embeds"].shape[::2] == (2, 16) and cond["pooled"].shape == (2, 4)
    result = classify(model, noise_image(16), ["a red dog", "a dog", "a cat"], samples=2, batch_size=2)
    assert np.isfinite(result.errors).all() and result.denoiser_calls == 4
    # the same prediction as the pipeline's own call convention for one prompt at one timestep
    x0 = model.encode_image(noise_image(16))
    x_t, _ = model.noised(x0, torch.randn_like(x0), 500)
    one = model.select(cond, [0])
    time_ids = torch.tensor([[16.0, 16, 0, 0, 16, 16]])
    with torch.no_grad():
        ours = model.predict(x_t, 500, one)
        theirs = pipe.unet(
            x_t,
            torch.tensor([500]),
            encoder_hidden_states=one["embeds"],
            added_cond_kwargs={"text_embeds": one["pooled"], "time_ids": time_ids},
        ).sample
    torch.testing.assert_close(ours, theirs)


def test_a_tiny_sd3_is_scored_by_flow_matching():
    pipe = tiny_sd3_pipeline()
    model = adapter_for(pipe, "tiny-sd3")
    assert isinstance(model, FlowMatching) and model.parameterisation == "flow"
    x0 = model.encode_image(noise_image(16))
    noise = torch.randn_like(x0)
    x_t, target = model.noised(x0, noise, 250)
    torch.testing.assert_close(x_t, 0.75 * x0 + 0.25 * noise)
    torch.testing.assert_close(target, noise - x0)
    # the latent is the VAE posterior mean, shifted and scaled like the pipeline's
    with torch.no_grad():
        pixels = torch.from_numpy(np.asarray(noise_image(16), np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        mean = pipe.vae.encode(pixels).latent_dist.mean
    torch.testing.assert_close(x0, (mean - 0.1) * 1.5)
    result = classify(model, noise_image(16), ["a red dog", "a dog"], samples=2)
    assert np.isfinite(result.errors).all() and result.denoiser_calls == 2


def test_the_adapter_is_chosen_by_the_attention_kind_and_unsupported_ones_are_named(embedded):
    from glimpse.attention.kinds import KINDS, detect
    from glimpse.diffusion_classifier.adapters import ADAPTERS

    assert set(ADAPTERS) <= set(KINDS)  # one detection path: every adapter is an attention kind's
    model = adapter_for(embedded.pipe, embedded.model_id)
    assert model.kind is detect(embedded.pipe) is KINDS[embedded.kind]
    assert model.denoiser is embedded.denoiser and model.resolution == embedded.resolution
    flux = tiny_flux_pipeline()
    assert detect(flux) is KINDS["flux"]  # traced by the attention lens, but not a classifier yet
    with pytest.raises(ValueError, match="FluxTransformer2DModel cannot be used"):
        adapter_for(flux)
    with pytest.raises(ValueError, match="object cannot be used"):
        adapter_for(object())  # no denoiser at all: the pipeline's own type is named
