"""Every tiny model the tests build, from configs written here (nothing is downloaded), seeded.

- **Classifiers** (analytic, 32×32 unless said): :class:`TinyCNN`, :class:`TinyViT` (a token model with a CLS
  token), :class:`LinearNet` (∇S = W everywhere) and their bundles; :class:`CascadeCNN` (24×24, three classes,
  the parameter units a cascading randomisation visits); a Hugging Face ViT saved to a folder
  (:func:`save_tiny_vit`) and one config of every transformers ViT family (:func:`vit_families`); images for them (:func:`image`, :func:`noise_image`) and method parameters that keep
  every saliency method fast on them (:data:`FAST_PARAMS`, :func:`param_variants`).
- **Text encoders**: a CLIP BPE tokenizer built in code (:func:`tiny_clip_tokenizer`) and one CLIP text config
  (:func:`clip_text_config`) for every pipeline's encoders.
- **Denoisers** at an 8×8 latent of 4 channels: a UNet, PixArt, SD3 and Flux transformers, a VAE; and
  **pipelines** of them: the embedded shapes pipeline with a tiny UNet, SD 1.x, SDXL, SD3 and Flux.
- A way to drive a denoiser directly (:func:`inputs`, :func:`call`) and :func:`one_thread`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import nn

from glimpse.token_grid import TokenGrid
from models.registry import ClassifierBundle, freeze

# ------------------------------------------------------------------------------------------------ classifiers
LABELS = ("apple", "banana", "cherry", "date palm", "elderberry")


def _seeded_normal_(module: nn.Module, seed: int, scale: float) -> None:
    """Every parameter drawn from N(0, scale²) with a generator of its own (the global one is left alone)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)


class TinyCNN(nn.Module):
    """conv -> ReLU -> conv (stride 2) -> ReLU [= "act2", 8×16×16] -> 1×1 conv -> ReLU -> linear.

    The 1×1 conv + ReLU + linear head (no global pooling) makes ∂S/∂A vary over locations, so the CAM
    variants differ from each other.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.act2 = nn.ReLU()
        self.mix = nn.Conv2d(8, 4, 1)
        self.act3 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(4 * 4 * 4, len(LABELS))
        _seeded_normal_(self, seed, 0.5)

    def forward(self, x):
        h = self.act2(self.conv2(self.act1(self.conv1(x))))
        h = self.pool(self.act3(self.mix(h)))
        return self.fc(h.flatten(1))


class TokenBlock(nn.Module):
    """y = x + GELU(W (x + mean_tokens x)): mixes tokens so CLS depends on every patch."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(dim, dim)
        self.act = nn.GELU()

    def forward(self, x):
        return x + self.act(self.lin(x + x.mean(1, keepdim=True)))


class TinyViT(nn.Module):
    """8×8 patches of a 32×32 input -> 16 tokens + CLS, two token blocks, linear head on CLS."""

    def __init__(self, dim: int = 8, seed: int = 0) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 8, stride=8)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.Sequential(TokenBlock(dim), TokenBlock(dim))
        self.head = nn.Linear(dim, len(LABELS))
        _seeded_normal_(self, seed, 0.5)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(x.shape[0], -1, -1), t], dim=1)
        return self.head(self.blocks(t)[:, 0])


class LinearNet(nn.Module):
    """S(x) = W·vec(x) + c: every gradient method is exact on it (∇S = W everywhere)."""

    def __init__(self, side: int = 32, seed: int = 0) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * side * side, len(LABELS))
        _seeded_normal_(self, seed, 0.05)

    def forward(self, x):
        return self.fc(x.flatten(1))


class CascadeCNN(nn.Module):
    """stem -> two conv blocks -> pool -> linear, 24×24 input, 3 classes: four parameter units for a cascading
    randomisation to visit top-down (built from torch's global generator: seed it first)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.act = nn.ReLU()
        self.blocks = nn.Sequential(
            nn.Sequential(nn.Conv2d(6, 6, 3, padding=1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(6, 8, 3, padding=1), nn.ReLU()),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.pool(self.blocks(self.act(self.stem(x)))).flatten(1))


def tiny_bundle(
    model_id: str,
    model: nn.Module,
    target_layers: tuple[str, ...],
    *,
    labels: tuple[str, ...] = LABELS,
    input_size: tuple[int, int] = (32, 32),
    **extra,
) -> ClassifierBundle:
    """A CPU bundle of a tiny classifier: inputs (pixel/255 − 0.5) / 0.25, frozen."""
    return ClassifierBundle(
        model_id=model_id,
        model=freeze(model, torch.device("cpu")),
        labels=labels,
        input_size=input_size,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        target_layers=target_layers,
        device=torch.device("cpu"),
        **extra,
    )


def cnn_bundle(model: nn.Module | None = None) -> ClassifierBundle:
    return tiny_bundle("tiny-cnn", model or TinyCNN(), ("act2", "act1"))


def vit_bundle() -> ClassifierBundle:
    return tiny_bundle(
        "tiny-vit", TinyViT(), ("blocks.1", "blocks.0"), kind="vit", token_grid=TokenGrid(prefix=1, height=4, width=4)
    )


def linear_bundle() -> ClassifierBundle:
    return tiny_bundle("tiny-linear", LinearNet(), ())


def cascade_bundle() -> ClassifierBundle:
    """:class:`CascadeCNN` built after ``torch.manual_seed(3)`` (it seeds torch's global generator)."""
    torch.manual_seed(3)
    return tiny_bundle("tiny", CascadeCNN(), ("blocks.1",), labels=("a", "b", "c"), input_size=(24, 24))


def image(h: int = 40, w: int = 48, seed: int = 0) -> np.ndarray:
    """A smooth random uint8 RGB image (smooth so superpixels are meaningful)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([np.sin(6 * xx + c) + np.cos(5 * yy - c) for c in range(3)], axis=-1)
    img = 127 + 60 * base + rng.normal(0, 10, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def noise_image(side: int) -> np.ndarray:
    """A uint8 RGB image of uniform noise, ``side`` × ``side`` (seed 0)."""
    return np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)


#: Small parameters that keep every method fast on the tiny models.
FAST_PARAMS = {
    "integrated_gradients": {"steps": 8},
    "gradient_shap": {"samples": 4, "baselines": 2},
    "smoothgrad": {"samples": 4},
    "smooth_gradcampp": {"samples": 2},
    "scorecam": {"channels": 0},
    "occlusion": {"window": 8, "stride": 8},
    "rise": {"masks": 16, "grid": 4},
    "lime": {"samples": 16, "segments": 8},
    "kernel_shap": {"samples": 16, "segments": 8},
}


def param_variants(name: str, params: dict, more: dict | None = None) -> list[dict]:
    """Method ``name``'s parameters ``params[name]``, then each other value of each categorical parameter, one
    at a time, then ``more[name]``'s extra settings (each over the base)."""
    from glimpse.saliency import REGISTRY

    info = REGISTRY[name].info
    base = dict(params.get(name, {}))
    out = [base]
    for key, allowed in info.choices.items():
        default = base.get(key, info.params[key])
        out += [{**base, key: value} for value in allowed if value != default]
    return out + [{**base, **extra} for extra in (more or {}).get(name, [])]


def save_tiny_vit(path: Path, labels: dict[int, str], **config) -> Path:
    """Save a seeded ``ViTForImageClassification`` (32×32 input, 8-px patches, 2 heads) with ``labels`` to
    ``path``, for the ``hf:`` loader; ``config`` overrides the ViTConfig defaults used here (hidden 32, 2 layers,
    MLP 64)."""
    from transformers import ViTConfig, ViTForImageClassification

    settings = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    settings.update(config)
    cfg = ViTConfig(
        image_size=32,
        patch_size=8,
        num_labels=len(labels),
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
        **settings,
    )
    torch.manual_seed(0)
    ViTForImageClassification(cfg).save_pretrained(path)
    return path


def vit_families(labels: dict[int, str]) -> dict[str, tuple[type, object]]:
    """(model class, config) of a tiny image classifier of every listed ``transformers`` family: ViT, DeiT (with
    and without its distillation head), DINOv2 and CLIP's vision tower; 32×32 input, 8-px patches (a 4×4 grid), 2
    heads, hidden 32, 2 layers, MLP 64, ``labels``' classes."""
    from transformers import (
        CLIPConfig,
        CLIPForImageClassification,
        DeiTConfig,
        DeiTForImageClassification,
        DeiTForImageClassificationWithTeacher,
        Dinov2Config,
        Dinov2ForImageClassification,
        ViTConfig,
        ViTForImageClassification,
    )

    tower = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    heads = dict(num_labels=len(labels), id2label=labels, label2id={v: k for k, v in labels.items()})
    common = dict(**tower, image_size=32, patch_size=8, **heads)
    text = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    clip = CLIPConfig(vision_config=dict(**tower, image_size=32, patch_size=8), text_config=text, **heads)
    return {
        "vit": (ViTForImageClassification, ViTConfig(**common)),
        "deit": (DeiTForImageClassification, DeiTConfig(**common)),
        "deit-teacher": (DeiTForImageClassificationWithTeacher, DeiTConfig(**common)),
        "dinov2": (Dinov2ForImageClassification, Dinov2Config(**common)),
        "clip-vision": (CLIPForImageClassification, clip),
    }


@functools.cache
def hf_vit_bundle() -> ClassifierBundle:
    """:func:`save_tiny_vit` (the labels of :data:`LABELS`) loaded by Glimpse's ``hf:`` loader: a ViT with real
    attention, which the attention methods (``models="vit"``) read. One per process."""
    import tempfile

    from models.hub import load_hf

    folder = Path(tempfile.mkdtemp(prefix="glimpse-tiny-vit-"))
    save_tiny_vit(folder, dict(enumerate(LABELS)))
    return load_hf(f"hf:{folder}", torch.device("cpu"))


def for_method(name: str, cnn: ClassifierBundle) -> ClassifierBundle:
    """The tiny model a registry method explains in the every-method tests: the ``hf:`` ViT for a method that
    reads a transformer's attention, else ``cnn``."""
    from glimpse.saliency import REGISTRY

    return hf_vit_bundle() if REGISTRY[name].info.models == "vit" else cnn


def any_model_methods() -> list[str]:
    """The registry's methods that explain any model (not only a ViT)."""
    from glimpse.saliency import REGISTRY

    return [n for n, m in REGISTRY.items() if m.info.models == "any"]


# ---------------------------------------------------------------------------------------------- text encoders
TEXT_LEN = 6
TEXT_DIM = 16


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


def clip_text_config(tokenizer, width: int, **extra):
    """A one-layer, two-head CLIP text encoder of ``width`` (MLP 2 × width) over ``tokenizer``'s vocabulary and
    positions; ``extra`` adds to it (``projection_dim`` for a ``CLIPTextModelWithProjection``)."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tokenizer.get_vocab()),
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        **extra,
    )


# -------------------------------------------------------------------------------------------------- denoisers
def _seeded(cls, **config) -> nn.Module:
    """``cls(**config)`` built right after ``torch.manual_seed(0)``, in eval mode."""
    torch.manual_seed(0)
    return cls(**config).eval()


#: the two patch transformers' shared geometry: an 8×8 latent of 4 channels in 2×2 patches, 2 layers of 2 heads
PATCH_TRANSFORMER = dict(
    sample_size=8, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2
)


def tiny_unet(**config):
    """A 2-level UNet2DConditionModel at an 8×8 latent, cross-attention on the first level; ``config`` adds to
    it (SDXL's added text-and-time embedding)."""
    from diffusers import UNet2DConditionModel

    return _seeded(
        UNet2DConditionModel,
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
        **config,
    )


def tiny_pixart():
    from diffusers import PixArtTransformer2DModel

    return _seeded(
        PixArtTransformer2DModel,
        **PATCH_TRANSFORMER,
        out_channels=8,
        cross_attention_dim=16,
        caption_channels=TEXT_DIM,
        use_additional_conditions=False,
    )


def tiny_sd3():
    from diffusers import SD3Transformer2DModel

    return _seeded(
        SD3Transformer2DModel,
        **PATCH_TRANSFORMER,
        joint_attention_dim=TEXT_DIM,
        caption_projection_dim=16,
        pooled_projection_dim=8,
        out_channels=4,
        qk_norm="rms_norm",
    )


def tiny_flux(in_channels: int = 4):
    from diffusers import FluxTransformer2DModel

    return _seeded(
        FluxTransformer2DModel,
        patch_size=1,
        in_channels=in_channels,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=TEXT_DIM,
        pooled_projection_dim=8,
        axes_dims_rope=(4, 4, 8),
    )


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


# -------------------------------------------------------------------------------------------------- pipelines
def _quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_shapes_pipeline(sample_size: int = 16):
    """The embedded pipeline class with a tiny random UNet: cross-attention at sample/2 and sample/4."""
    from models.shapes_pipeline import ShapesPipeline

    torch.manual_seed(0)
    pipe = ShapesPipeline.build(block_out_channels=(8, 16, 16), cross_attention_dim=16, sample_size=sample_size)
    for module in (pipe.unet, pipe.text_encoder):
        module.eval().requires_grad_(False)
    return _quiet(pipe)


def tiny_sd_pipeline():
    """A Stable-Diffusion pipeline (UNet, VAE, CLIP text encoder) from tiny configs: 16x16 images."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextModel

    tokenizer = tiny_clip_tokenizer()
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(clip_text_config(tokenizer, TEXT_DIM))
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
    return _quiet(pipe)


def tiny_sd3_pipeline():
    """SD3 from tiny configs: the transformer of the attention tests, two CLIP text encoders, no T5."""
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection

    tokenizer = tiny_clip_tokenizer()
    torch.manual_seed(0)

    def encoder():
        return CLIPTextModelWithProjection(clip_text_config(tokenizer, 8, projection_dim=4))

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
    return _quiet(pipe)


def tiny_sdxl_pipeline():
    """SDXL from tiny configs: two CLIP text encoders (the second with a projection), a UNet with SDXL's added
    text-and-time embedding."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = tiny_clip_tokenizer()
    unet = tiny_unet(  # cross-attention reads the two encoders' hidden states (8 + 8) side by side
        addition_embed_type="text_time",
        addition_time_embed_dim=4,
        projection_class_embeddings_input_dim=6 * 4 + 4,  # six time ids of 4 + the pooled projection
    )
    vae = tiny_vae()
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(clip_text_config(tokenizer, 8)),
        text_encoder_2=CLIPTextModelWithProjection(clip_text_config(tokenizer, 8, projection_dim=4)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(),
    )
    return _quiet(pipe)


def tiny_flux_pipeline():
    """A FluxPipeline (CLIP + T5 text encoders, VAE, transformer) from tiny configs: 32x32 images."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline
    from transformers import CLIPTextModel, T5Config, T5EncoderModel, T5Tokenizer

    tokenizer = tiny_clip_tokenizer()
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁a", -1.0), ("▁red", -1.0), ("▁d", -2.5), ("▁", -2.0)]
    tokenizer_2 = T5Tokenizer(vocab=pieces + [(c, -3.0) for c in "abcdefghijklmnopqrstuvwxyz"], extra_ids=0)
    tokenizer_2.model_max_length = 512
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(clip_text_config(tokenizer, 8, projection_dim=8))
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
    return _quiet(pipe)


# ---------------------------------------------------------------------------------------- driving a denoiser
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
