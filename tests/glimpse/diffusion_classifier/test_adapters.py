"""The adapters on real pipelines: the embedded model (v-prediction, pixel space), a tiny Stable Diffusion
(ε-prediction, latent) and a tiny SD3 (flow matching), all built from configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glimpse.diffusion_classifier import FlowMatching, NoisePrediction, adapter_for, classify
from tests.glimpse.attention.tiny_denoisers import one_thread, tiny_clip_tokenizer, tiny_sd3, tiny_sd_pipeline, tiny_vae

_threads = pytest.fixture(autouse=True, scope="module")(one_thread)


def tiny_sd3_pipeline():
    """SD3 from tiny configs: the transformer of the attention tests, two CLIP text encoders, no T5."""
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    tokenizer = tiny_clip_tokenizer()
    torch.manual_seed(0)

    def encoder():
        return CLIPTextModelWithProjection(
            CLIPTextConfig(
                vocab_size=len(tokenizer.get_vocab()),
                hidden_size=8,
                intermediate_size=16,
                projection_dim=4,
                num_hidden_layers=1,
                num_attention_heads=2,
                max_position_embeddings=tokenizer.model_max_length,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            )
        )

    vae = tiny_vae(shift_factor=0.1, scaling_factor=1.5)
    pipe = StableDiffusion3Pipeline(
        transformer=tiny_sd3(),
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=encoder(),
        tokenizer=tokenizer,
        text_encoder_2=encoder(),
        tokenizer_2=tokenizer,
        text_encoder_3=None,
        tokenizer_3=None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_sdxl_pipeline():
    """SDXL from tiny configs: two CLIP text encoders (the second with a projection), a UNet with SDXL's added
    text-and-time embedding."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = tiny_clip_tokenizer()
    torch.manual_seed(0)
    config = {
        "vocab_size": len(tokenizer.get_vocab()),
        "hidden_size": 8,
        "intermediate_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": tokenizer.model_max_length,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": 1,
    }
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        cross_attention_dim=16,  # the two encoders' hidden states side by side
        attention_head_dim=2,
        norm_num_groups=4,
        addition_embed_type="text_time",
        addition_time_embed_dim=4,
        projection_class_embeddings_input_dim=6 * 4 + 4,  # six time ids of 4 + the pooled projection
    ).eval()
    vae = tiny_vae()
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(CLIPTextConfig(**config)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**config, projection_dim=4)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _image(side: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def embedded():
    from models.diffusion import load_pipeline

    return load_pipeline("shapes-t2i", device="cpu")


def test_the_embedded_model_is_scored_in_v_and_its_words_are_checked(embedded):
    model = adapter_for(embedded.pipe, embedded.model_id)
    assert isinstance(model, NoisePrediction) and model.parameterisation == "v_prediction"
    assert model.pixel_space and model.resolution == 32
    x0 = model.encode_image(_image(40))  # any size: resized to the model's 32 px, pixels in [-1, 1]
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
        classify(model, _image(32), ["a red circle", "A red circle."], samples=2)
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
    x0 = model.encode_image(_image(24))  # resized to the model's 16 px, then encoded to its 8×8 latent
    assert x0.shape == (1, 4, model.resolution // 2, model.resolution // 2)
    result = classify(model, _image(24), ["a red dog", "a red cat", "a dog"], samples=3)
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
    result = classify(model, _image(), ["a red dog", "a dog", "a cat"], samples=2, batch_size=2)
    assert np.isfinite(result.errors).all() and result.denoiser_calls == 4
    # the same prediction as the pipeline's own call convention for one prompt at one timestep
    x0 = model.encode_image(_image())
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
    x0 = model.encode_image(_image())
    noise = torch.randn_like(x0)
    x_t, target = model.noised(x0, noise, 250)
    torch.testing.assert_close(x_t, 0.75 * x0 + 0.25 * noise)
    torch.testing.assert_close(target, noise - x0)
    # the latent is the VAE posterior mean, shifted and scaled like the pipeline's
    with torch.no_grad():
        pixels = torch.from_numpy(np.asarray(_image(), np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        mean = pipe.vae.encode(pixels).latent_dist.mean
    torch.testing.assert_close(x0, (mean - 0.1) * 1.5)
    result = classify(model, _image(), ["a red dog", "a dog"], samples=2)
    assert np.isfinite(result.errors).all() and result.denoiser_calls == 2


def test_unsupported_pipelines_are_named():
    from tests.glimpse.attention.tiny_denoisers import tiny_flux_pipeline

    with pytest.raises(ValueError, match="FluxTransformer2DModel cannot be used"):
        adapter_for(tiny_flux_pipeline())
