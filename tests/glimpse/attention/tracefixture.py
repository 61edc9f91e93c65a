"""A small hand-built AttentionTrace for export tests, and a denoiser that runs twice per call."""

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from glimpse.attention import AttentionTrace


def small_trace() -> AttentionTrace:
    tokens = ("[CLS]", "a", "red", "circle", "[SEP]")
    rng = np.random.default_rng(0)
    return AttentionTrace(
        prompt="a red circle",
        tokens=tokens,
        words=("a", "red", "circle"),
        word_tokens=((1,), (2,), (3,)),
        timesteps=np.array([999, 666, 333]),
        layers=("down.attn2", "up.attn2"),
        layer_maps=tuple(rng.random((3, len(tokens), s, s)).astype(np.float16) for s in (8, 16)),
        model_id="shapes-t2i",
        seed=0,
        steps=3,
        guidance=4.0,
        image_shape=(32, 32),
    )


@contextmanager
def runs_twice(module: torch.nn.Module) -> Iterator[None]:
    """Every call of ``module`` runs its forward twice (its recorders see two calls per denoising step)."""
    forward = module.forward

    def twice(*args, **kwargs):
        forward(*args, **kwargs)
        return forward(*args, **kwargs)

    module.forward = twice
    try:
        yield
    finally:
        del module.forward
