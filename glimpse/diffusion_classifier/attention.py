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

from glimpse.attention.generate import prompt_tokens
from glimpse.attention.kinds import kind_of
from glimpse.attention.trace import AttentionTrace
from glimpse.attention.tracer import AttentionTracer
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
) -> AttentionTrace:
    """Record ``prompt``'s cross-attention while ``bundle``'s denoiser denoises ``image`` at ``timesteps``
    (default: the classifier's grid of ``samples``), with the classifier's noise draws for ``seed``."""
    kind = kind_of(bundle.kind)
    model = adapter_for(bundle.pipe, bundle.model_id)
    text = model.check_prompt(prompt)
    tokens = prompt_tokens(bundle, text)
    grid = timestep_grid(samples, model.num_train_timesteps)
    chosen = list(grid if timesteps is None else timesteps)
    missing = [t for t in chosen if t not in grid]
    if missing:
        raise ValueError(f"timesteps: {missing} are not on the classifier's grid of {samples}")
    side = model.resolution
    plan = kind.layer_plan(bundle.pipe, side, layers)
    with bundle.lock, torch.no_grad():
        x0 = model.encode_image(image)
        cond = model.encode_prompts([text])
        noise = torch.randn((len(grid), *x0.shape[1:]), generator=torch.Generator().manual_seed(seed))
        noise = noise.to(x0.device, x0.dtype)
        tracer = AttentionTracer(
            bundle.denoiser,
            kind,
            lock=bundle.lock,
            token_positions=tokens.positions,
            image_hw=(side, side),
            cfg=False,
            exclude_resolutions=plan.exclude,
            blocks=plan.blocks,
            head_sums=kind.head_sums,
            text_len=tokens.text_len,
        )
        with tracer:
            for t in chosen:
                i = grid.index(t)
                x_t, _ = model.noised(x0, noise[i : i + 1], t)
                model.predict(x_t, t, cond)
        names, maps = tracer.result()
        sums = tracer.sums()
    return AttentionTrace(
        prompt=text,
        tokens=tokens.tokens,
        words=tokens.words,
        word_tokens=tokens.word_tokens,
        timesteps=np.asarray(chosen, dtype=np.int64),
        layers=names,
        layer_maps=maps,
        model_id=bundle.model_id,
        seed=int(seed),
        steps=len(chosen),
        guidance=0.0,
        image_shape=(side, side),
        heads=False,
        head_sums=sums,
        grid=plan.grid,
        layer_set=layers,
    )
