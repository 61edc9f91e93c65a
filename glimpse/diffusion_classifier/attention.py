"""The cross-attention of one prompt while the diffusion classifier denoises the image under it.

The classifier's own inputs (the image noised with the same draws at the same timesteps) go through the
denoiser once more for the one prompt, under the attention lens's tracer
(:class:`glimpse.attention.tracer.AttentionTracer`); the result is an
:class:`~glimpse.attention.trace.AttentionTrace` like a generation's, so :func:`glimpse.attention.word_maps`
gives each word's map over this image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from glimpse.attention.generate import Denoised, prompt_tokens, trace_denoiser
from glimpse.attention.trace import AttentionTrace
from glimpse.diffusion_classifier.adapters import adapter_for
from glimpse.diffusion_classifier.scoring import timestep_grid


def trace_prompt(
    bundle: Any,
    image: np.ndarray,
    prompt: str,
    *,
    timesteps: Sequence[int] | None = None,
    samples: int = 20,
    seed: int = 0,
    layers: str = "daam",
    resolutions: Sequence[int] | None = None,
) -> AttentionTrace:
    """Record ``prompt``'s cross-attention while ``bundle``'s denoiser denoises ``image`` at ``timesteps``
    (default: the classifier's grid of ``samples``), with the classifier's noise draws for ``seed``.

    One denoiser call per timestep, without guidance, through :func:`glimpse.attention.generate.trace_denoiser`
    (so ``layers`` and ``resolutions`` are checked as for a generation)."""
    model = adapter_for(bundle.pipe, bundle.model_id)
    text = model.check_prompt(prompt)
    tokens = prompt_tokens(bundle, text)
    grid = timestep_grid(samples, model.num_train_timesteps)
    chosen = list(grid if timesteps is None else timesteps)
    missing = [t for t in chosen if t not in grid]
    if missing:
        raise ValueError(f"timesteps: {missing} are not on the classifier's grid of {samples}")
    if not chosen:
        raise ValueError(f"timesteps: none chosen; pick at least one of the grid {grid}")
    side = model.resolution

    def denoise() -> Denoised:
        with torch.no_grad():
            x0 = model.encode_image(image)
            cond = model.encode_prompts([text])
            noise = torch.randn((len(grid), *x0.shape[1:]), generator=torch.Generator().manual_seed(seed))
            noise = noise.to(x0.device, x0.dtype)
            for t in chosen:
                i = grid.index(t)
                x_t, _ = model.noised(x0, noise[i : i + 1], t)
                model.predict(x_t, t, cond)
        return Denoised(chosen, (side, side))

    trace, _ = trace_denoiser(
        bundle, tokens, denoise, prompt=text, seed=seed, guidance=0.0, side=side, layers=layers,
        resolutions=resolutions,
    )  # fmt: skip
    return trace
