"""Feature visualisation by activation maximisation, with the lucid / lucent image parameterisation.

Olah, Mordvintsev & Schubert, "Feature Visualization", Distill (2017); the parameterisation of lucid
(tensorflow/lucid, ``param.image``, ``transform.standard_transforms``) and its PyTorch port lucent:

- the image is ``sigmoid(C @ irfft2(S * scale) / 4)`` per pixel, with ``S`` a learned complex spectrum,
  ``scale = 1 / max(f, 1 / max(H, W))`` (f the spatial frequency, so low frequencies dominate) and ``C`` the
  square root of ImageNet's colour correlation, normalised to a largest column norm of 1 (decorrelated colour);
- every step sees a randomly transformed copy: padding, jitter, scale and rotation, then jitter again, so
  only features robust to small shifts survive (no high-frequency adversarial pattern);
- the loss is ``-objective + tv_weight * total_variation``; Adam on ``S``.

The objective is a class logit (pre-softmax, as in Nguyen, Yosinski & Clune 2016) or the mean activation of
one channel of a layer. A start image (a facet's cluster mean) is encoded exactly into ``S``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glimpse.lab.common import ModelInput, capture, model_device, resolve_module, to_tensor, to_uint8

#: lucid's colour correlation square root (ImageNet), rows = RGB output, columns = decorrelated channels.
COLOR_CORRELATION_SVD_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32)


@dataclass(frozen=True)
class Objective:
    """What to maximise: ``kind`` "class" (the logit ``index``) or "channel" (mean of channel ``index`` of
    ``layer``'s output)."""

    kind: str
    index: int
    layer: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("class", "channel"):
            raise ValueError(f"objective: kind must be 'class' or 'channel', got {self.kind!r}")
        if self.kind == "channel" and not self.layer:
            raise ValueError("objective: a channel objective needs its layer")
        if int(self.index) < 0:
            raise ValueError(f"objective: index must be >= 0, got {self.index}")

    @classmethod
    def parse(cls, text: str) -> Objective:
        """``"class:207"`` or ``"channel:blocks.5:12"`` (layer path, then channel)."""
        kind, _, rest = text.partition(":")
        if kind == "class" and rest.strip().lstrip("-").isdigit():
            return cls("class", int(rest))
        layer, _, k = rest.rpartition(":")
        if kind == "channel" and layer and k.strip().isdigit():
            return cls("channel", int(k), layer)
        raise ValueError(f"objective: expected 'class:INDEX' or 'channel:LAYER:K', got {text!r}")

    def describe(self) -> str:
        return f"class {self.index}" if self.kind == "class" else f"channel {self.index} of {self.layer}"


@dataclass(frozen=True)
class Visualization:
    """One visualisation.

    Attributes
    ----------
    image : np.ndarray
        uint8 (H, W, 3) at the model's input size.
    score : float
        The objective on the final 8-bit image ``image``, untransformed (logit, or mean channel activation).
    probability : float | None
        For a class objective, the class's probability on ``image`` (softmax, or sigmoid when multilabel): a
        lossless PNG of it, re-read at this size, gives the model this probability.
    trace : np.ndarray
        float64 (steps,): the objective on each step's transformed image.
    snapshots : tuple
        (step, uint8 image) pairs: the image as it formed.
    """

    image: np.ndarray
    score: float
    probability: float | None
    trace: np.ndarray
    snapshots: tuple[tuple[int, np.ndarray], ...]
    objective: Objective
    params: dict = field(default_factory=dict)

    def meta(self) -> dict:
        return {"lens": "model-lab", "method": "feature-visualisation", "objective": self.objective.describe(),
                **self.params}  # fmt: skip


class FourierImage(nn.Module):
    """lucid's ``fft_image`` + ``to_valid_rgb(decorrelate=True)``: an (1, 3, H, W) image in (0, 1)."""

    def __init__(self, size: tuple[int, int], *, generator: torch.Generator, sd: float = 0.01, decay: float = 1.0):
        super().__init__()
        h, w = size
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        freqs = torch.sqrt(fx * fx + fy * fy)
        self.register_buffer("scale", 1.0 / torch.clamp(freqs, min=1.0 / max(h, w)) ** decay)
        colour = torch.from_numpy(
            COLOR_CORRELATION_SVD_SQRT / np.max(np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0))
        )
        self.register_buffer("colour", colour)
        self.size = (h, w)
        init = torch.randn((3, h, w // 2 + 1, 2), generator=generator) * sd
        self.spectrum = nn.Parameter(init)

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        latent = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") / 4.0  # (3, H, W), decorrelated
        rgb = torch.einsum("ij,jhw->ihw", self.colour, latent)
        return torch.sigmoid(rgb)[None]

    @torch.no_grad()
    def encode(self, image: torch.Tensor) -> None:
        """Set the spectrum so that :meth:`forward` returns ``image`` (1, 3, H, W) in [0, 1] (clipped away from
        0 and 1, where the sigmoid has no finite preimage)."""
        logit = torch.logit(image[0].clamp(1 / 512, 1 - 1 / 512))
        latent = torch.einsum("ij,jhw->ihw", torch.linalg.inv(self.colour), logit) * 4.0
        spectrum = torch.fft.rfft2(latent, norm="ortho") / self.scale
        self.spectrum.copy_(torch.view_as_real(spectrum))


def _transform(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """lucid's standard transforms: pad 12 (grey), jitter 8, scale 0.9-1.1, rotate -10..10 degrees, jitter 4
    (the result is 8 pixels larger per side than ``x``)."""

    def randint(lo: int, hi: int) -> int:
        return int(torch.randint(lo, hi + 1, (1,), generator=generator))

    def jitter(t: torch.Tensor, d: int) -> torch.Tensor:
        dy, dx = randint(0, d), randint(0, d)
        h, w = t.shape[-2:]
        return t[..., dy : h - d + dy, dx : w - d + dx]

    x = F.pad(x, (12, 12, 12, 12), value=0.5)
    x = jitter(x, 8)
    scale = 1 + (randint(0, 10) - 5) / 50
    angle = math.radians(randint(-10, 10))
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype, device=x.device)[None]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return jitter(x, 4)


def _seen(x: torch.Tensor, generator: torch.Generator, size: tuple[int, int]) -> torch.Tensor:
    """The transformed image at the model's input size (the transforms change the size; a model with a fixed
    input, such as a flatten before its head, needs it back)."""
    t = _transform(x, generator)
    return (
        F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False) if t.shape[-2:] != x.shape[-2:] else t
    )


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels (anisotropic TV)."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def _objective_value(
    model: nn.Module, objective: Objective, x: torch.Tensor, inp: ModelInput
) -> tuple[torch.Tensor, torch.Tensor]:
    """(objective per image, logits) for a batch in [0, 1]."""
    if objective.kind == "class":
        logits = model(inp.normalise(x))
        if objective.index >= logits.shape[-1]:
            raise ValueError(f"objective: class {objective.index} is out of range (the model has {logits.shape[-1]})")
        return logits[:, objective.index], logits
    with capture(resolve_module(model, objective.layer)) as seen:
        logits = model(inp.normalise(x))
    act = seen[-1]
    if act.dim() < 2 or objective.index >= act.shape[1]:
        raise ValueError(
            f"objective: channel {objective.index} is out of range for {objective.layer} ({tuple(act.shape)})"
        )
    channel = act[:, objective.index]
    return channel.reshape(channel.shape[0], -1).mean(dim=1), logits


def visualize(
    model: nn.Module,
    objective: Objective,
    inp: ModelInput,
    *,
    steps: int = 256,
    lr: float = 0.05,
    tv_weight: float = 0.0,
    init: np.ndarray | None = None,
    transforms: bool = True,
    seed: int = 0,
    snapshot_every: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> Visualization:
    """Maximise ``objective`` over the image.

    Parameters
    ----------
    model : nn.Module
        Input ``inp.normalise(x)`` for x in [0, 1]; the model is only read (gradients reach the image alone).
    objective : Objective
        A class logit or a channel's mean activation.
    inp : ModelInput
        The model's input size, normalisation and scoring.
    steps, lr : int, float
        Adam steps on the spectrum and its learning rate.
    tv_weight : float
        Weight of the total-variation penalty (0: lucid's default of none).
    init : np.ndarray, optional
        uint8 start image (a facet's cluster mean); otherwise low-amplitude random spectrum noise.
    transforms : bool
        Random pad, jitter, scale and rotation each step (off: plain gradient ascent, adversarial-looking).
    seed : int
        Seeds the start and the transforms: the same seed gives the same image.
    snapshot_every : int
        Keep the image every this many steps (and the last one).
    progress : callable, optional
        ``progress(step, steps)`` after each step.

    Returns
    -------
    Visualization
    """
    if steps < 1:
        raise ValueError(f"steps: must be at least 1, got {steps}")
    if lr <= 0:
        raise ValueError(f"lr: must be positive, got {lr}")
    device = model_device(model)
    generator = torch.Generator().manual_seed(int(seed))
    param = FourierImage(inp.size, generator=generator).to(device)
    if init is not None:
        param.encode(to_tensor(init, inp.size, device))
    optimiser = torch.optim.Adam(param.parameters(), lr=lr)
    trace = np.empty(steps, dtype=np.float64)
    snapshots: list[tuple[int, np.ndarray]] = [(0, to_uint8(param()))]
    for step in range(steps):
        optimiser.zero_grad(set_to_none=True)
        x = param()
        seen = _seen(x, generator, inp.size) if transforms else x
        value, _ = _objective_value(model, objective, seen, inp)
        loss = -value.mean() + (tv_weight * total_variation(x) if tv_weight else 0.0)
        # autograd.grad, not backward(): a shared model's parameters get no .grad written
        (param.spectrum.grad,) = torch.autograd.grad(loss, [param.spectrum])
        optimiser.step()
        trace[step] = float(value.detach().mean())
        if (step + 1) % max(1, snapshot_every) == 0 or step + 1 == steps:
            snapshots.append((step + 1, to_uint8(param())))
        if progress is not None:
            progress(step + 1, steps)
    with torch.no_grad():
        # scored as the 8-bit image it is returned (and written) as, so a PNG of it re-read gives the same number
        image = to_uint8(param())
        value, logits = _objective_value(model, objective, to_tensor(image, None, device), inp)
        prob = float(inp.probabilities(logits)[0, objective.index]) if objective.kind == "class" else None
    params = {"steps": steps, "lr": lr, "tv_weight": tv_weight, "transforms": transforms, "seed": seed,
              "start": "image" if init is not None else "noise", "size": list(inp.size)}  # fmt: skip
    return Visualization(image, float(value[0]), prob, trace, tuple(snapshots), objective, params)
