"""ShapesMMDiTPipeline: the embedded SD3-style text-to-image transformer of Glimpse (``shapes-mmdit``).

The same task as :class:`models.shapes_pipeline.ShapesPipeline` (32x32 pixel-space scenes of one or two
flat-coloured shapes on white, ``glimpse/evaluation/shapes_scenes.py``), with the denoiser of Stable Diffusion 3
(Esser et al. 2024, "Scaling Rectified Flow Transformers for High-Resolution Image Synthesis"): an MMDiT whose
joint attention lets image and text tokens attend to each other, trained by flow matching. Shipped under
``models/embedded/shapes_mmdit``.

Components
----------
* ``transformer``: ``diffusers.SD3Transformer2DModel`` on the 3 image channels (no VAE), 2x2 patches
  (256 image tokens), predicting the rectified-flow velocity v = eps - x0 of x_sigma = (1 - sigma) x0 + sigma eps.
* ``text_encoder``, ``tokenizer``: shapes-t2i's trained BERT and its word-level tokenizer, frozen; the
  transformer reads its last hidden state (all 16 positions) and, as the pooled vector, the mean over the
  prompt's unmasked positions.
* ``scheduler``: ``FlowMatchEulerDiscreteScheduler`` (Euler steps on sigma from 1 to 0, shift 1).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
from transformers import BertModel, BertTokenizer

from glimpse.evaluation.shapes_scenes import IMAGE_SIZE
from models.shapes_pipeline import ShapesPipeline, ShapesTextPipeline

#: guidance scale used when none is given (models/embedded/shapes_mmdit/README.md)
MMDIT_GUIDANCE_SCALE = 1.5


def build_transformer(
    *, layers: int = 4, heads: int = 4, head_dim: int = 32, text_width: int = 128, patch_size: int = 2
) -> SD3Transformer2DModel:
    """A small SD3 MMDiT over 32x32 RGB: ``layers`` joint blocks of width ``heads * head_dim``."""
    width = heads * head_dim
    return SD3Transformer2DModel(
        sample_size=IMAGE_SIZE,
        patch_size=patch_size,
        in_channels=3,
        out_channels=3,
        num_layers=layers,
        attention_head_dim=head_dim,
        num_attention_heads=heads,
        joint_attention_dim=text_width,
        caption_projection_dim=width,
        pooled_projection_dim=text_width,
        pos_embed_max_size=IMAGE_SIZE // patch_size,  # the sin-cos table of the 16x16 grid, no larger
    )


def build_flow_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """Flow-matching Euler sampler, 1000 training timesteps (t = 1000 sigma), no resolution shift."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)


class ShapesMMDiTPipeline(ShapesTextPipeline):
    """Text-to-image pipeline of the embedded MMDiT (see the module docstring)."""

    model_cpu_offload_seq = "text_encoder->transformer"
    default_guidance_scale: ClassVar[float] = MMDIT_GUIDANCE_SCALE

    def __init__(
        self,
        transformer: SD3Transformer2DModel,
        text_encoder: BertModel,
        tokenizer: BertTokenizer,
        scheduler: FlowMatchEulerDiscreteScheduler,
    ) -> None:
        super().__init__()
        self.register_modules(
            transformer=transformer, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler
        )

    @classmethod
    def build(cls, text_from: str, **transformer_kwargs: Any) -> ShapesMMDiTPipeline:
        """A new transformer beside the text encoder and tokenizer of the shapes-t2i pipeline saved at ``text_from``."""
        text = ShapesPipeline.from_pretrained(text_from)
        width = int(text.text_encoder.config.hidden_size)
        transformer = build_transformer(text_width=width, **transformer_kwargs)
        return cls(transformer, text.text_encoder, text.tokenizer, build_flow_scheduler())

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.transformer

    def conditioning(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """The text tokens and the pooled vector: the mean of the text encoder's output over unmasked positions."""
        ids, mask = self._token_ids(prompts)
        ids, mask = ids.to(self.text_encoder.device), mask.to(self.text_encoder.device)
        hidden = self.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1)
        return {"encoder_hidden_states": hidden, "pooled_projections": pooled}

    def predict(
        self, scheduler: Any, sample: torch.Tensor, t: torch.Tensor, cond: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        timestep = torch.as_tensor(t, device=sample.device).expand(sample.shape[0])
        return self.transformer(hidden_states=sample, timestep=timestep, **cond).sample
