"""What the lab's functions share: the model's input convention, image conversion, a forward hook."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glimpse.images import as_rgb, load_image


@dataclass(frozen=True)
class ModelInput:
    """How images reach the model: ``(x - mean) / std`` of RGB in [0, 1] at ``size`` (H, W).

    ``multilabel``: classes are scored independently (sigmoid), not by one softmax.
    """

    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    multilabel: bool = False

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def resized(self, side: int | None) -> ModelInput:
        """The same input at ``side`` x ``side`` (None: unchanged); models that pool globally take any size."""
        return self if not side else ModelInput((side, side), self.mean, self.std, self.multilabel)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=-1)


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def to_tensor(image: np.ndarray, size: tuple[int, int] | None, device: torch.device) -> torch.Tensor:
    """uint8 (H, W, 3) or (H, W) -> float32 (1, 3, h, w) in [0, 1], resized (bilinear, antialiased) to ``size``."""
    arr = as_rgb(image)
    x = torch.from_numpy(np.array(arr)).permute(2, 0, 1)[None].to(device, torch.float32) / 255.0  # a copy
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    return x


def to_uint8(x: torch.Tensor, size: tuple[int, int] | None = None) -> np.ndarray:
    """float (1, 3, h, w) or (3, h, w) in [0, 1] -> uint8 (H, W, 3), resized to ``size`` (H, W) when given."""
    t = x.detach().float()
    if t.dim() == 3:
        t = t[None]
    if size is not None and tuple(t.shape[-2:]) != tuple(size):
        t = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return (t[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0).round().astype(np.uint8)


@torch.no_grad()
def written_probabilities(
    data: bytes | str, model: nn.Module, preprocess: Callable[[np.ndarray], torch.Tensor], inp: ModelInput
) -> np.ndarray:
    """float64 (classes,): the model's probabilities for an image file as a reader gets them: decoded by
    :func:`glimpse.images.load_image`, then ``preprocess`` (the model's own resize and scaling, e.g. a registry
    bundle's ``preprocess``, as ``python -m glimpse classify`` does) and ``model``. How a written file's claim
    is checked."""
    logits = model(preprocess(load_image(data)))
    return inp.probabilities(logits.float())[0].cpu().numpy().astype(np.float64)


def resolve_module(model: nn.Module, path: str) -> nn.Module:
    """The submodule at a dotted ``path`` (``""``: the model), or a ValueError naming what exists."""
    if not path:
        return model
    modules = dict(model.named_modules())
    if path not in modules:
        close = [n for n in modules if n and path.split(".")[-1] in n][:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"layer: the model has no module {path!r}{hint}")
    return modules[path]


@contextlib.contextmanager
def capture(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record ``module``'s output on every forward inside the ``with``; the hook is removed on exit."""
    seen: list[torch.Tensor] = []

    def hook(_m, _inp, out):
        seen.append(out[0] if isinstance(out, (tuple, list)) else out)

    handle = module.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def layer_outputs(
    model: nn.Module, layer: str, images: Sequence[np.ndarray], inp: ModelInput, batch_size: int
) -> Iterator[tuple[int, torch.Tensor]]:
    """``(start, output of layer)`` for each batch of ``images`` (index of its first image), without gradients."""
    device = model_device(model)
    module = resolve_module(model, layer)
    for start in range(0, len(images), batch_size):
        x = stack_images(list(images[start : start + batch_size]), inp.size, device)
        with torch.no_grad(), capture(module) as seen:
            model(inp.normalise(x))
        yield start, seen[-1]


def stack_images(images: Sequence[np.ndarray], size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] of uint8 images resized to ``size``."""
    if not images:
        raise ValueError("images: give at least one image")
    return torch.cat([to_tensor(img, size, device) for img in images])
