"""The recorded cross-attention of one generation: frozen, CPU numpy, picklable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from glimpse.versions import library_versions


@dataclass(frozen=True)
class AttentionTrace:
    """Cross-attention probabilities recorded during one generation.

    ``layer_maps[i]`` holds, for layer ``layers[i]`` and every denoising step, the attention probability
    of each image position (query) on each kept text token (key): shape ``(T, K, h, w)`` with heads
    averaged, or ``(T, heads, K, h, w)`` when heads were kept; float16. For joint attention (SD3, Flux)
    it is the image-query -> text-key block of the softmax over the full key set (image + text), so a
    row of it sums to less than one.

    ``head_sums[i]`` (UNet pipelines), when present, holds every head's probabilities of layer ``layers[i]``
    summed over all T steps, ``(heads, K, h, w)`` float32: DAAM's per-(layer, head) sum, so that the
    aggregation can clamp per head without the trace keeping the heads of every step.

    ``grid`` is the side of the square grid on which the maps are aggregated before they are resized
    to the output (DAAM: 64 for 512- and 1024-px Stable Diffusion, else 96; the embedded model: its image
    side); None upsamples straight to the output size. ``layer_set`` names the recorded layers
    (:data:`glimpse.attention.daam.LAYER_SETS`: ``"daam"`` or ``"all"``).
    """

    prompt: str
    tokens: tuple[str, ...]  # text tokens kept (start/end included where the tokenizer has them)
    words: tuple[str, ...]  # the prompt's words in order
    word_tokens: tuple[tuple[int, ...], ...]  # for each word, indices into ``tokens``
    timesteps: np.ndarray  # (T,) int, in generation order
    layers: tuple[str, ...]  # processor paths recorded
    layer_maps: tuple[np.ndarray, ...]  # per layer: (T, K, h, w) or (T, heads, K, h, w) float16
    model_id: str
    seed: int
    steps: int
    guidance: float
    image_shape: tuple[int, int] | None = None  # (H, W) of the generated image in pixels
    heads: bool = False  # whether layer_maps keep the head axis
    head_sums: tuple[np.ndarray, ...] | None = None  # per layer: (heads, K, h, w) float32, summed over all steps
    grid: int | None = None  # side of the aggregation grid (DAAM's latent grid), None: straight to the output
    layer_set: str = "all"  # which layers were recorded: "daam" or "all"

    def resolutions(self) -> tuple[int, ...]:
        """Distinct map heights ``h`` of the recorded layers, ascending."""
        return tuple(sorted({int(m.shape[-2]) for m in self.layer_maps}))

    def resolution_of(self, layer: str) -> int:
        """Map height of one recorded layer."""
        return int(self.layer_maps[self.layers.index(layer)].shape[-2])

    def meta(self, *, versions: bool = True) -> dict[str, Any]:
        """How the trace was made, as plain JSON values: prompt, model, seed, steps, guidance, the recorded
        layer set, grid and heads, and (``versions``) the libraries' versions."""
        out: dict[str, Any] = {
            "lens": "attention",
            "prompt": str(self.prompt),
            "model_id": str(self.model_id),
            "seed": int(self.seed),
            "steps": int(self.steps),
            "guidance": float(self.guidance),
            "image_shape": None if self.image_shape is None else [int(v) for v in self.image_shape],
            "layer_set": str(self.layer_set),
            "layers": len(self.layers),
            "grid": None if self.grid is None else int(self.grid),
            "heads": bool(self.heads),
        }
        if versions:
            out["versions"] = library_versions()
        return out

    @property
    def nbytes(self) -> int:
        """Bytes held by the recorded maps (and the per-head sums)."""
        return int(sum(m.nbytes for m in (*self.layer_maps, *(self.head_sums or ()))))


@dataclass(frozen=True)
class GenerationResult:
    """The generated image and the attention recorded while generating it."""

    image: np.ndarray  # uint8 (H, W, 3)
    trace: AttentionTrace
