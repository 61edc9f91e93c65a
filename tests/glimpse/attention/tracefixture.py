"""A small hand-built trace for export tests (until/unless a real generation is needed)."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class _Trace:
    prompt: str
    tokens: tuple
    words: tuple
    word_tokens: tuple
    timesteps: np.ndarray
    layers: tuple
    layer_maps: tuple
    model_id: str
    seed: int
    steps: int
    guidance: float

    def resolutions(self):
        return tuple(sorted({m.shape[-2] for m in self.layer_maps}))


def small_trace():
    tokens = ("[CLS]", "a", "red", "circle", "[SEP]")
    rng = np.random.default_rng(0)
    return _Trace(
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
    )
