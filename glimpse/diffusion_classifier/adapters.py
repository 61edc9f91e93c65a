"""What the diffusion classifier needs from each kind of pipeline: a :class:`~.scoring.Denoising` adapter.

- :class:`NoisePrediction`: a UNet pipeline on the DDPM schedule, predicting ε, v or x₀ (the scheduler's
  ``prediction_type``): Stable Diffusion 1.x / 2.x / XL (latent: VAE posterior mean × scaling factor; SDXL
  also gets its pooled text embedding and the size/crop time ids of an uncropped image at the model's
  resolution) and the embedded shapes model (pixel space, v-prediction, its coordinate planes added by
  ``pipe.unet_input``).
- :class:`FlowMatching`: SD3 / SD3.5 and the embedded shapes MMDiT (pixel space) (rectified flow):
  ``x_t = (1 − σ) x₀ + σ ε`` with ``σ = t / T``, target ``ε − x₀``; the transformer takes ``σ·1000`` as its
  timestep, like the pipeline.

The embedded shapes pipelines (word-level vocabulary, ``validate_prompt``) give their text inputs through
``pipe.conditioning`` and are refused unknown words rather than truncated.

:func:`adapter_for` picks one for a pipeline from its attention kind (:func:`glimpse.attention.kinds.detect`, the
one detection path; :data:`ADAPTERS` maps a kind to its adapter), and takes the denoiser, the tokenizer's limit
and the resolution from that kind. Everything runs without gradients; on a GPU the denoiser runs under float16
autocast.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch

from glimpse.attention.kinds import Kind, detect


def _check_text(prompt: Any) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"prompt {prompt!r}: empty; every candidate needs at least one word")
    return prompt.strip()


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    """uint8 RGB at ``side``×``side`` (bicubic, as the reference code), float32 in [-1, 1], (1, 3, side, side)."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image: expected uint8 RGB (H, W, 3), got {image.dtype} {image.shape}")
    if image.shape[:2] != (side, side):
        image = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC))
    return (image.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]


class _Adapter:
    model_id: str
    num_train_timesteps: int = 1000
    parameterisation: str
    device: torch.device
    dtype: torch.dtype
    resolution: int
    denoiser: torch.nn.Module

    def __init__(self, pipe: Any, model_id: str, kind: Kind) -> None:
        self.pipe, self.model_id, self.kind = pipe, model_id, kind
        self.denoiser = kind.denoiser(pipe)
        self.device, self.dtype = self.denoiser.device, self.denoiser.dtype
        self.resolution = kind.resolution(pipe)
        self.num_train_timesteps = int(pipe.scheduler.config.num_train_timesteps)
        self.pixel_space = getattr(pipe, "vae", None) is None
        self.embedded = hasattr(pipe, "validate_prompt") and hasattr(pipe, "conditioning")

    def _autocast(self):
        if self.device.type == "cuda" and self.dtype == torch.float32:
            return torch.autocast("cuda", dtype=torch.float16)
        return nullcontext()

    def check_prompt(self, prompt: str) -> str:
        """The prompt, stripped; ValueError when the tokenizer would truncate it."""
        if self.embedded:  # word-level vocabulary: unknown words and long prompts are refused, not truncated
            # the words it encodes (lower case, no edge punctuation), so equal encodings are caught as repeats
            return " ".join(self.pipe.validate_prompt(_check_text(prompt)))
        text = _check_text(prompt)
        n = len(self.kind.tokenizer(self.pipe)(text, add_special_tokens=True)["input_ids"])
        limit = self.kind.max_tokens(self.pipe)
        if n > limit:
            raise ValueError(f"prompt {text!r}: {n} tokens, but the text encoder takes at most {limit}")
        return text

    def _pixels(self, image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(_resize(image, self.resolution)).to(self.device)

    def encode_image(self, image: np.ndarray) -> torch.Tensor:
        pixels = self._pixels(image)
        return pixels.to(self.dtype) if self.pixel_space else self._latents(pixels)

    def _latents(self, pixels: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        upcast = bool(getattr(vae.config, "force_upcast", False)) and vae.dtype == torch.float16
        if upcast:  # as diffusers' own pipelines do: an fp16 SDXL VAE can encode to inf/NaN
            vae.to(torch.float32)
        try:
            posterior = vae.encode(pixels.to(vae.dtype)).latent_dist
        finally:
            if upcast:
                vae.to(torch.float16)
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        return ((posterior.mean - shift) * vae.config.scaling_factor).to(self.dtype)

    @staticmethod
    def select(conditions: Any, index: Sequence[int]) -> Any:
        if isinstance(conditions, dict):
            return {k: v[list(index)] for k, v in conditions.items()}
        return conditions[list(index)]


class NoisePrediction(_Adapter):
    """A UNet on the DDPM schedule (module docstring)."""

    def __init__(self, pipe: Any, model_id: str, kind: Kind) -> None:
        super().__init__(pipe, model_id, kind)
        self.parameterisation = str(pipe.scheduler.config.get("prediction_type", "epsilon"))
        if self.parameterisation not in ("epsilon", "v_prediction", "sample"):
            raise ValueError(f"model: prediction type {self.parameterisation!r} is not supported")
        self.alphas_cumprod = pipe.scheduler.alphas_cumprod.to(torch.float64)
        added = getattr(self.denoiser.config, "addition_embed_type", None)
        if added not in (None, "text_time"):
            raise ValueError(f"model: UNets with added embeddings of type {added!r} are not supported")
        self.xl = added == "text_time"

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor | dict[str, torch.Tensor]:
        if self.embedded:
            return self.pipe.encode_prompt(list(prompts)).to(self.dtype)
        if self.xl:
            out = self.pipe.encode_prompt(
                prompt=list(prompts), device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=False
            )
            return {"embeds": out[0].to(self.dtype), "pooled": out[2].to(self.dtype)}
        embeds = self.pipe.encode_prompt(list(prompts), self.device, 1, False)[0]
        return embeds.to(self.dtype)

    def noised(self, x0: torch.Tensor, noise: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        a = float(self.alphas_cumprod[t])
        x_t = a**0.5 * x0 + (1 - a) ** 0.5 * noise
        if self.parameterisation == "epsilon":
            return x_t, noise
        if self.parameterisation == "v_prediction":
            return x_t, a**0.5 * noise - (1 - a) ** 0.5 * x0
        return x_t, x0.expand_as(noise)

    def predict(self, x_t: torch.Tensor, t: int, conditions: torch.Tensor | dict) -> torch.Tensor:
        sample = self.pipe.unet_input(x_t) if self.embedded else x_t
        timestep = torch.full((len(x_t),), t, device=self.device, dtype=torch.long)
        with self._autocast():
            if not self.xl:
                return self.denoiser(sample, timestep, encoder_hidden_states=conditions).sample
            side = self.resolution  # (original size, crop top-left, target size) of an uncropped square image
            time_ids = torch.tensor([[side, side, 0, 0, side, side]], device=self.device, dtype=self.dtype)
            added = {"text_embeds": conditions["pooled"], "time_ids": time_ids.expand(len(x_t), -1)}
            return self.denoiser(
                sample, timestep, encoder_hidden_states=conditions["embeds"], added_cond_kwargs=added
            ).sample


class FlowMatching(_Adapter):
    """SD3 / SD3.5: rectified flow (module docstring)."""

    parameterisation = "flow"

    def encode_prompts(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        if self.embedded:
            cond = self.pipe.conditioning(list(prompts))
            return {
                "embeds": cond["encoder_hidden_states"].to(self.dtype),
                "pooled": cond["pooled_projections"].to(self.dtype),
            }
        out = self.pipe.encode_prompt(
            prompt=list(prompts), prompt_2=None, prompt_3=None, device=self.device, do_classifier_free_guidance=False
        )
        return {"embeds": out[0].to(self.dtype), "pooled": out[2].to(self.dtype)}

    def noised(self, x0: torch.Tensor, noise: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        sigma = t / self.num_train_timesteps
        return (1 - sigma) * x0 + sigma * noise, noise - x0

    def predict(self, x_t: torch.Tensor, t: int, conditions: dict[str, torch.Tensor]) -> torch.Tensor:
        timestep = torch.full((len(x_t),), float(t), device=self.device, dtype=x_t.dtype)
        with self._autocast():
            return self.denoiser(
                hidden_states=x_t,
                timestep=timestep,
                encoder_hidden_states=conditions["embeds"],
                pooled_projections=conditions["pooled"],
            ).sample


#: attention kind (:data:`glimpse.attention.kinds.KINDS`) -> its diffusion-classifier adapter
ADAPTERS: dict[str, type[_Adapter]] = {"unet": NoisePrediction, "sd3": FlowMatching}


def adapter_for(pipe: Any, model_id: str = "") -> _Adapter:
    """The adapter of a loaded pipeline, by its attention kind: a UNet (DDPM schedule) or an SD3 transformer
    (flow matching).

    ValueError naming the denoiser when neither fits (PixArt and Flux are not supported yet)."""
    kind = detect(pipe)
    adapter = None if kind is None else ADAPTERS.get(kind.name)
    if adapter is None:
        transformer = getattr(pipe, "transformer", None)
        name = type(transformer).__name__ if transformer is not None else type(pipe).__name__
        raise ValueError(
            f"model: {name} cannot be used as a diffusion classifier yet; supported: UNet pipelines (the embedded "
            "model, Stable Diffusion 1.x/2.x/XL) and SD3"
        )
    return adapter(pipe, model_id, kind)
