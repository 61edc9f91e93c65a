"""Tiny diffusers denoisers built from configs (no download) and a way to drive them directly."""

from __future__ import annotations

import torch

TEXT_LEN = 6
TEXT_DIM = 16


def tiny_shapes_pipeline(sample_size: int = 16):
    """The embedded pipeline class with a tiny random UNet: cross-attention at sample/2 and sample/4."""
    from models.shapes_pipeline import ShapesPipeline

    torch.manual_seed(0)
    pipe = ShapesPipeline.build(block_out_channels=(8, 16, 16), cross_attention_dim=16, sample_size=sample_size)
    pipe.set_progress_bar_config(disable=True)
    for module in (pipe.unet, pipe.text_encoder):
        module.eval().requires_grad_(False)
    return pipe


def tiny_unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=2,
        norm_num_groups=4,
    ).eval()


def tiny_pixart():
    from diffusers import PixArtTransformer2DModel

    torch.manual_seed(0)
    return PixArtTransformer2DModel(
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=8,
        num_layers=2,
        cross_attention_dim=16,
        sample_size=8,
        patch_size=2,
        caption_channels=TEXT_DIM,
        use_additional_conditions=False,
    ).eval()


def tiny_sd3():
    from diffusers import SD3Transformer2DModel

    torch.manual_seed(0)
    return SD3Transformer2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=4,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=TEXT_DIM,
        caption_projection_dim=16,
        pooled_projection_dim=8,
        out_channels=4,
        qk_norm="rms_norm",
    ).eval()


def tiny_flux(in_channels: int = 4):
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=in_channels,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=TEXT_DIM,
        pooled_projection_dim=8,
        axes_dims_rope=(4, 4, 8),
    ).eval()


def inputs(kind: str, batch: int = 2, seed: int = 0) -> dict:
    """Random latents / text states for one denoiser call (a CFG batch when batch == 2)."""
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(batch, TEXT_LEN, TEXT_DIM, generator=g)
    t = torch.full((batch,), 500)
    if kind == "unet":
        return {"sample": torch.randn(batch, 4, 8, 8, generator=g), "timestep": t, "encoder_hidden_states": text}
    if kind == "pixart":
        mask = torch.ones(batch, TEXT_LEN)
        mask[:, -2:] = 0  # padding
        return {
            "hidden_states": torch.randn(batch, 4, 8, 8, generator=g),
            "encoder_hidden_states": text,
            "timestep": t,
            "added_cond_kwargs": {"resolution": None, "aspect_ratio": None},
            "encoder_attention_mask": mask,
        }
    if kind == "sd3":
        return {
            "hidden_states": torch.randn(batch, 4, 8, 8, generator=g),
            "encoder_hidden_states": text,
            "pooled_projections": torch.randn(batch, 8, generator=g),
            "timestep": t,
        }
    if kind == "flux":
        h = w = 4
        img_ids = torch.zeros(h, w, 3)
        img_ids[..., 1] = torch.arange(h)[:, None]
        img_ids[..., 2] = torch.arange(w)[None, :]
        return {
            "hidden_states": torch.randn(batch, h * w, 4, generator=g),
            "encoder_hidden_states": text,
            "pooled_projections": torch.randn(batch, 8, generator=g),
            "timestep": t.float() / 1000,
            "img_ids": img_ids.reshape(-1, 3),
            "txt_ids": torch.zeros(TEXT_LEN, 3),
        }
    raise ValueError(kind)


def call(model, kind: str, kw: dict) -> torch.Tensor:
    with torch.no_grad():
        out = model(**kw, return_dict=False)[0]
    return out


def one_thread():
    """Generator for a module fixture: tiny models run fastest on one thread (no OpenMP spin on a busy CPU)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tiny_clip_tokenizer(max_length: int = 12):
    """A fast CLIP BPE tokenizer built in code: 'a' and 'red' are whole tokens, other words split into letters."""
    import string

    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in string.ascii_lowercase + ",.":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    vocab["re"] = len(vocab)
    vocab["red</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[("r", "e"), ("re", "d</w>")], model_max_length=max_length)


def tiny_vae(**overrides):
    """A 2-level AutoencoderKL from a tiny config: 16x16 images to 4-channel 8x8 latents."""
    from diffusers import AutoencoderKL

    config = {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
        "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
        "block_out_channels": (4, 8),
        "latent_channels": 4,
        "norm_num_groups": 4,
        "sample_size": 16,
    }
    return AutoencoderKL(**{**config, **overrides})


def tiny_sd_pipeline():
    """A Stable-Diffusion pipeline (UNet, VAE, CLIP text encoder) from tiny configs: 16x16 images."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = tiny_clip_tokenizer()
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer.get_vocab()),
            hidden_size=TEXT_DIM,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    vae = tiny_vae()
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=tiny_unet(),
        scheduler=DDIMScheduler(steps_offset=1, clip_sample=False),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_flux_pipeline():
    """A FluxPipeline (CLIP + T5 text encoders, VAE, transformer) from tiny configs: 32x32 images."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel, T5Tokenizer

    tokenizer = tiny_clip_tokenizer()
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁a", -1.0), ("▁red", -1.0), ("▁d", -2.5), ("▁", -2.0)]
    tokenizer_2 = T5Tokenizer(vocab=pieces + [(c, -3.0) for c in "abcdefghijklmnopqrstuvwxyz"], extra_ids=0)
    tokenizer_2.model_max_length = 512
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer.get_vocab()),
            hidden_size=8,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            projection_dim=8,
        )
    )
    text_encoder_2 = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer_2.get_vocab()), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    )
    vae = tiny_vae(use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0)
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=tiny_flux(in_channels=16),  # 2x2-packed 4-channel latents
    )
    pipe.default_sample_size = 16  # 32x32 images: a 16x16 latent, 8x8 packed tokens
    pipe.set_progress_bar_config(disable=True)
    return pipe
