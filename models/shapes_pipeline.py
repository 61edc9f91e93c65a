"""ShapesPipeline: the embedded, offline text-to-image diffusion model of Glimpse.

A small pixel-space (32x32 RGB) text-conditional diffusion model trained on synthetic scenes of one or
two flat-coloured shapes on white (see ``glimpse/evaluation/shapes_scenes.py``), shipped in the repository under
``models/embedded/shapes_t2i`` and loaded with ``ShapesPipeline.from_pretrained`` exactly like a hub
pipeline.

Components (registered with ``register_modules``)
------------------------------------------------
* ``unet``: ``diffusers.UNet2DConditionModel`` predicting the velocity
  v = sqrt(abar_t) * eps - sqrt(1 - abar_t) * x0 (v-prediction, Salimans & Ho 2022, "Progressive
  Distillation for Fast Sampling of Diffusion Models"), with cross-attention (``attn2``) at 16x16,
  8x8 and in the mid block.
* ``text_encoder``: a 3-layer ``transformers.BertModel`` of width 128. It is bidirectional, unlike
  CLIP's causal text encoder, so the first shape word can see the relation words that follow it.
* ``tokenizer``: a word-level ``BertTokenizer`` whose vocabulary is the caption words plus BERT's
  special tokens; every word is exactly one token.
* ``scheduler``: ``DDIMScheduler`` (Song et al. 2021) with the cosine schedule of Nichol & Dhariwal
  2021 (``squaredcos_cap_v2``, 1000 steps) and ``trailing`` timestep spacing.

Token positions
---------------
The text encoder's output always has ``tokenizer.model_max_length`` positions:
``[CLS] w_1 ... w_n [SEP] [PAD] ...``; the k-th word of the prompt (0-based, whitespace split) is at
token position k + 1. :meth:`ShapesPipeline.tokenize_words` returns the string of every position,
which is what a cross-attention tracer needs to name its maps.

Classifier-free guidance (Ho & Salimans 2022)
---------------------------------------------
The UNet is called once per step on the batch ``[unconditional, conditional]`` (that order, like
Stable Diffusion); the unconditional embedding is that of the empty prompt ``""``, and
v_hat = v_uncond + w * (v_cond - v_uncond) with ``w = guidance_scale``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from diffusers import DDIMScheduler, DiffusionPipeline, ImagePipelineOutput, UNet2DConditionModel
from transformers import BertConfig, BertModel, BertTokenizer

from glimpse.attention.generate import word_spans

# the side of the generated images in pixels and every word a caption may use (in tokenizer order): those of
# the scenes the model learnt
from glimpse.evaluation.shapes_scenes import IMAGE_SIZE, VOCABULARY

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
#: classifier-free guidance scale used when none is given: best of the sweep 1.5 / 2 / 4 measured on the
#: shipped checkpoint (see models/embedded/shapes_t2i/README.md); at 4 colours saturate and mix
DEFAULT_GUIDANCE_SCALE = 1.5
#: token positions fed to the UNet: the longest caption has 10 words (+ [CLS] and [SEP])
MAX_TOKENS = 16


def build_tokenizer(vocabulary: tuple[str, ...] = VOCABULARY, max_length: int = MAX_TOKENS) -> BertTokenizer:
    """Word-level tokenizer: BERT's WordPiece over a vocabulary of whole words, so one word = one token."""
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *vocabulary])}
    return BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=max_length)


def build_text_encoder(
    vocab_size: int, *, width: int = 128, layers: int = 3, heads: int = 4, max_length: int = MAX_TOKENS
) -> BertModel:
    """Bidirectional transformer text encoder (Devlin et al. 2019); the UNet reads last_hidden_state.

    The (unused) pooler is kept so that ``BertModel.from_pretrained`` finds every weight it builds.
    """
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * width,
        max_position_embeddings=max_length,
        type_vocab_size=1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertModel(config)


def build_unet(
    *,
    block_out_channels: tuple[int, ...] = (32, 64, 128),
    cross_attention_dim: int = 128,
    heads: int = 4,
    norm_num_groups: int = 8,
    sample_size: int = IMAGE_SIZE,
    coord_channels: int = 2,
) -> UNet2DConditionModel:
    """Pixel-space UNet: no attention at full resolution, cross-attention in every lower block and mid.

    With (32, 64, 128) the resolutions are 32x32 (plain ResNet block), 16x16 and 8x8 (cross-attention),
    about 4.2 M parameters.

    ``coord_channels`` = 2 adds x and y coordinate planes to the input (CoordConv, Liu et al. 2018):
    ``in_channels`` = 3 + 2, ``out_channels`` = 3, and :meth:`ShapesPipeline.unet_input` appends the planes.
    Convolutions and attention are translation-equivariant, so without them the UNet knows where a pixel
    is only through the zero padding; "to the left of" needs to know which half of the canvas is left.
    """
    if coord_channels not in (0, 2):
        raise ValueError(f"coord_channels {coord_channels}: expected 0 or 2")
    n = len(block_out_channels)
    down = ("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1)
    up = ("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",)
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=3 + coord_channels,
        out_channels=3,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=block_out_channels,
        layers_per_block=1,
        cross_attention_dim=cross_attention_dim,
        # diffusers' legacy naming: for UNet2DConditionModel this is the number of heads
        attention_head_dim=heads,
        norm_num_groups=norm_num_groups,
    )


def build_scheduler() -> DDIMScheduler:
    """DDIM with the cosine schedule, v-prediction and trailing spacing (the first step is t = 999)."""
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="v_prediction",
        timestep_spacing="trailing",
        clip_sample=True,  # pixel space: x0 lies in [-1, 1]
        clip_sample_range=1.0,
        set_alpha_to_one=False,
    )


def coordinate_planes(sample: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) planes with the x (columns) and y (rows) coordinate of every pixel centre in [-1, 1],
    in the dtype and on the device of ``sample`` (B, C, H, W)."""
    b, _, h, w = sample.shape
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w * 2 - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    planes = torch.stack([xx, yy]).to(device=sample.device, dtype=sample.dtype)
    return planes.unsqueeze(0).expand(b, -1, -1, -1)


class ShapesTextPipeline(DiffusionPipeline):
    """What the embedded shapes pipelines share: the word-level prompt (validation, token strings, embeddings
    from the BERT text encoder) and the sampling loop with classifier-free guidance. A subclass names its
    denoiser and says how it is called (:meth:`conditioning`, :meth:`predict`); the scheduler's class is the
    one it was saved with (DDIM for the UNet, flow-matching Euler for the MMDiT)."""

    #: the guidance scale a generation uses when none is given (the model card's sweep)
    default_guidance_scale: ClassVar[float] = DEFAULT_GUIDANCE_SCALE

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, **kwargs: Any) -> ShapesTextPipeline:
        """Load like any diffusers pipeline; computes in float32 unless ``torch_dtype`` says otherwise.

        The committed weights are stored in float16 to halve the repository size; float16 kernels on
        CPU are slow, so the default compute dtype is float32.
        """
        if "torch_dtype" not in kwargs:
            kwargs.setdefault("dtype", torch.float32)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    # ------------------------------------------------------------------ denoiser
    @property
    def denoiser(self) -> torch.nn.Module:
        """The network that predicts the denoising target (``unet`` or ``transformer``)."""
        raise NotImplementedError

    @property
    def image_channels(self) -> int:
        """Channels of the image (and of the denoiser's output): 3."""
        return int(self.denoiser.config.out_channels)

    def conditioning(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """The denoiser's text inputs for ``prompts``, keyword -> tensor with the batch first."""
        return {"encoder_hidden_states": self.encode_prompt(prompts)}

    def predict(
        self, scheduler: Any, sample: torch.Tensor, t: torch.Tensor, cond: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """The denoiser's output for ``sample`` at timestep ``t`` under ``cond`` (:meth:`conditioning`)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ text
    @property
    def vocabulary(self) -> tuple[str, ...]:
        """The words a prompt may use (the tokenizer's vocabulary without special tokens)."""
        vocab = self.tokenizer.get_vocab()
        return tuple(w for w, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if w not in SPECIAL_TOKENS)

    @property
    def max_prompt_words(self) -> int:
        """Longest prompt in words: the text encoder's token limit minus [CLS] and [SEP]."""
        return int(self.tokenizer.model_max_length) - 2

    def validate_prompt(self, prompt: str) -> list[str]:
        """Return the prompt's lower-cased words; raise ValueError if it cannot be encoded faithfully.

        Unknown words would silently become [UNK] and long prompts would be truncated, so both are
        refused instead.
        """
        if not isinstance(prompt, str):
            raise ValueError(f"prompt {prompt!r}: expected a string")
        words = self.prompt_words(prompt)
        if not words:
            raise ValueError(f"prompt {prompt!r}: empty")
        allowed = set(self.vocabulary)
        unknown = [w for w in words if w not in allowed]
        if unknown:
            raise ValueError(f"prompt {prompt!r}: unknown words {unknown}; the vocabulary is {list(self.vocabulary)}")
        if len(words) > self.max_prompt_words:
            raise ValueError(
                f"prompt {prompt!r}: {len(words)} words, but the text encoder takes at most "
                f"{self.tokenizer.model_max_length} tokens ({self.max_prompt_words} words plus [CLS] and [SEP])"
            )
        return words

    @staticmethod
    def prompt_words(prompt: str) -> list[str]:
        """The prompt's words, lower-cased, without the punctuation at their edges ("A red circle." -> a, red,
        circle): the tokenizer would make a full stop a token of its own, unknown to the vocabulary."""
        return [w.lower() for _, _, w in word_spans(prompt)]

    def tokenize_words(self, prompt: str) -> list[str]:
        """The token string at every position of the text embedding (length ``model_max_length``).

        Example: ``"a red circle"`` -> ``["[CLS]", "a", "red", "circle", "[SEP]", "[PAD]", ...]``.
        Word k of the prompt is at position k + 1.
        """
        if prompt.strip():
            self.validate_prompt(prompt)
        ids, _ = self._token_ids([prompt])
        return self.tokenizer.convert_ids_to_tokens(ids[0].tolist())

    def _token_ids(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer(
            [" ".join(self.prompt_words(p)) for p in prompts],
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        return enc["input_ids"], enc["attention_mask"]

    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        """Text embeddings (B, model_max_length, width); no validation (the empty prompt is allowed).

        Padding positions are masked inside the text encoder but still passed to the UNet, which
        attends over all positions (as Stable Diffusion does with its padded 77 tokens).
        """
        ids, mask = self._token_ids(prompts)
        ids, mask = ids.to(self.text_encoder.device), mask.to(self.text_encoder.device)
        return self.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state

    # ---------------------------------------------------------------- sample
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        *,
        num_inference_steps: int = 25,
        guidance_scale: float | None = None,
        generator: torch.Generator | None = None,
        output_type: str = "np",
        callback_on_step_end: Callable[..., dict] | None = None,
    ) -> ImagePipelineOutput:
        """Generate 32x32 images with the pipeline's scheduler and classifier-free guidance.

        Parameters
        ----------
        prompt : str or list of str
            Words from :attr:`vocabulary`, at most :attr:`max_prompt_words` of them.
        num_inference_steps : int
            Sampling steps (the first starts from pure noise: t = 999 for DDIM's trailing spacing, sigma = 1
            for flow matching).
        guidance_scale : float, optional
            w in v_hat = v_u + w (v_c - v_u); ``<= 1`` disables guidance (conditional branch only); default
            :attr:`default_guidance_scale`.
        generator : torch.Generator, optional
            Seeds the initial noise x_T ~ N(0, I).
        output_type : {"np", "pil", "pt"}
            "np": float32 array in [0, 1], shape (B, 32, 32, 3); "pil": list of PIL images;
            "pt": float tensor in [0, 1], shape (B, 3, 32, 32).
        callback_on_step_end : callable, optional
            ``fn(pipe, step_index, timestep, {"latents": x_t}) -> dict``; a returned ``"latents"``
            replaces the current sample.
        """
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise ValueError("prompt []: empty")
        for p in prompts:
            self.validate_prompt(p)
        if output_type not in ("np", "pil", "pt"):
            raise ValueError(f"output_type {output_type!r}: expected 'np', 'pil' or 'pt'")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps {num_inference_steps}: must be >= 1")
        guidance_scale = self.default_guidance_scale if guidance_scale is None else guidance_scale

        device, dtype = self.denoiser.device, self.denoiser.dtype
        batch = len(prompts)
        do_cfg = guidance_scale > 1.0
        cond = self.conditioning(prompts)
        if do_cfg:
            uncond = self.conditioning([""] * batch)
            cond = {k: torch.cat([uncond[k], v]) for k, v in cond.items()}
        cond = {k: v.to(dtype) for k, v in cond.items()}

        # a private scheduler: set_timesteps mutates state, and a cached pipeline is shared by sessions
        scheduler = type(self.scheduler).from_config(self.scheduler.config)
        scheduler.set_timesteps(num_inference_steps, device=device)
        size = self.denoiser.config.sample_size
        latents = torch.randn((batch, self.image_channels, size, size), generator=generator)
        latents = latents.to(device=device, dtype=dtype) * getattr(scheduler, "init_noise_sigma", 1.0)

        for i, t in enumerate(scheduler.timesteps):
            model_input = torch.cat([latents, latents]) if do_cfg else latents
            out = self.predict(scheduler, model_input, t, cond)
            if do_cfg:
                uncond_out, cond_out = out.chunk(2)
                out = uncond_out + guidance_scale * (cond_out - uncond_out)
            latents = scheduler.step(out, t, latents).prev_sample
            if callback_on_step_end is not None:
                result = callback_on_step_end(self, i, t, {"latents": latents})
                if result is not None and "latents" in result:
                    latents = result["latents"]

        image = (latents.float() / 2 + 0.5).clamp(0, 1).cpu()
        if output_type == "pt":
            return ImagePipelineOutput(images=image)
        array = image.permute(0, 2, 3, 1).numpy()
        if output_type == "pil":
            return ImagePipelineOutput(images=self.numpy_to_pil(array))
        return ImagePipelineOutput(images=array)

    @staticmethod
    def numpy_to_pil(images: np.ndarray) -> list:
        """Float [0, 1] NHWC array -> list of PIL images."""
        from PIL import Image

        return [Image.fromarray((im * 255).round().astype(np.uint8)) for im in images]


class ShapesPipeline(ShapesTextPipeline):
    """Text-to-image pipeline of the embedded shapes model (see the module docstring)."""

    model_cpu_offload_seq = "text_encoder->unet"

    def __init__(
        self,
        unet: UNet2DConditionModel,
        text_encoder: BertModel,
        tokenizer: BertTokenizer,
        scheduler: DDIMScheduler,
    ) -> None:
        super().__init__()
        self.register_modules(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)

    @classmethod
    def build(cls, **unet_kwargs: Any) -> ShapesPipeline:
        """A randomly initialised pipeline (``unet_kwargs`` go to :func:`build_unet`)."""
        tokenizer = build_tokenizer()
        width = unet_kwargs.get("cross_attention_dim", 128)
        text_encoder = build_text_encoder(len(tokenizer.get_vocab()), width=width)
        return cls(build_unet(**unet_kwargs), text_encoder, tokenizer, build_scheduler())

    # ------------------------------------------------------------------ unet input
    @property
    def denoiser(self) -> torch.nn.Module:
        return self.unet

    def unet_input(self, sample: torch.Tensor) -> torch.Tensor:
        """The UNet's input for an image-shaped ``sample`` (B, 3, H, W): the sample itself, followed by
        x and y coordinate planes in [-1, 1] (pixel centres) when the UNet was built with them."""
        extra = int(self.unet.config.in_channels) - self.image_channels
        if extra == 0:
            return sample
        if extra != 2:
            raise ValueError(f"UNet has {extra} input channels beyond the image; expected 0 or 2")
        return torch.cat([sample, coordinate_planes(sample)], dim=1)

    def predict(
        self, scheduler: Any, sample: torch.Tensor, t: torch.Tensor, cond: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        return self.unet(self.unet_input(scheduler.scale_model_input(sample, t)), t, **cond).sample
