"""Plain values of the saliency package: method descriptions, costs, targets and results.

:class:`MethodInfo` describes a method (``units`` says what its maps measure: maps in equal units may share a
colour scale); :class:`Cost` counts the images it pushes through the model; :class:`Target` is the explained
score; :class:`SaliencyMap` is a result. No torch here: the method base class and what it receives at run
time are in :mod:`glimpse.saliency.contract`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from glimpse.jsonable import json_ready
from glimpse.versions import library_versions


@dataclass(frozen=True, kw_only=True)
class MethodInfo:
    """What a method is, for the registry, the UI (teaching mode), the CLI and the tests.

    Only what a method says of itself is required (its name, label, family, explanation and citation); the
    rest defaults to the common case: no parameters, a layer only for the CAM family.
    """

    name: str  # registry key
    label: str  # display name
    family: str  # "gradient" | "cam" | "perturbation" | "attention"
    explanation: str  # two lines, formula in words
    citation: str
    #: The method reads the activations of one chosen layer; None: it does when its family is "cam".
    needs_layer: bool | None = None
    params: dict = field(default_factory=dict)  # parameter name -> default (JSON-serialisable)
    choices: dict = field(default_factory=dict)  # parameter name -> allowed values for categorical parameters
    slow: bool = False
    has_completeness: bool = False
    #: Some setting of the method draws random numbers (noise, masks, samples, random baselines), so the map
    #: depends on ``explain``'s seed; ``Method.uses_seed(params)`` says whether a given setting does.
    stochastic: bool = False
    #: What a map's values measure, e.g. "∂S/∂x" or "ΔS per pixel". Maps with equal units may share one
    #: colour scale; empty means a unit of the method's own (``Method.units``), so it never shares.
    units: str = ""
    #: The formula assumes non-negative activations A at the chosen layer (post-ReLU), e.g. Grad-CAM++'s
    #: α = g² / (2g² + ΣA·g³); check the layer with ``glimpse.saliency.layers.layer_activations``.
    assumes_nonnegative_activations: bool = False
    #: The model kinds the method explains ("any", or e.g. "vit": it reads a vision transformer's attention);
    #: ``Method.applies(bundle)`` checks a loaded model and says why not.
    models: str = "any"

    def __post_init__(self) -> None:
        if self.needs_layer is None:
            object.__setattr__(self, "needs_layer", self.family == "cam")


@dataclass(frozen=True)
class Cost:
    """Images a method pushes through the model to explain one image.

    ``forward``: images through a forward pass only (no gradient); ``backward``: images through a forward
    and a backward pass. Where the count adapts to the image (Integrated Gradients' adaptive rule refines
    until its tolerance is met), ``forward``/``backward`` are the fewest and ``forward_max``/``backward_max``
    the most; None means the count is fixed.
    """

    forward: int
    backward: int
    forward_max: int | None = None
    backward_max: int | None = None

    def __post_init__(self) -> None:
        for low, high, name in (
            (self.forward, self.forward_max, "forward"),
            (self.backward, self.backward_max, "backward"),
        ):
            if low < 0 or (high is not None and high < low):
                raise ValueError(f"cost: {name} counts must satisfy 0 <= count <= max, got {low}, {high}")

    @property
    def most(self) -> tuple[int, int]:
        """(forward, backward) at the most."""
        return (
            self.forward if self.forward_max is None else self.forward_max,
            self.backward if self.backward_max is None else self.backward_max,
        )

    @property
    def adaptive(self) -> bool:
        return self.most != (self.forward, self.backward)

    def __add__(self, other: Cost) -> Cost:
        (f1, b1), (f2, b2) = self.most, other.most
        f, b = self.forward + other.forward, self.backward + other.backward
        return Cost(f, b, None if f1 + f2 == f else f1 + f2, None if b1 + b2 == b else b1 + b2)

    def __mul__(self, n: int) -> Cost:
        n = int(n)
        return Cost(
            self.forward * n,
            self.backward * n,
            None if self.forward_max is None else self.forward_max * n,
            None if self.backward_max is None else self.backward_max * n,
        )

    __rmul__ = __mul__


#: No images: the start of a sum of costs.
NO_COST = Cost(0, 0)
#: The shared forward+backward pass of one image.
SHARED_PASS = Cost(0, 1)


@dataclass(frozen=True)
class CostInput:
    """What a method's cost depends on besides its parameters (built by ``engine.estimate_cost``)."""

    input_size: tuple[int, int]  # (H, W) of the model input
    layer: str | None
    #: the channel count of ``layer``'s output, measured on demand (one probe forward, only if asked)
    layer_channels: Callable[[], int]


def windows(size: int, window: int, stride: int) -> int:
    """Positions of a sliding window along one side, the last one flush with the edge (Captum's Occlusion:
    ``ceil((size − window) / stride) + 1``)."""
    return math.ceil((size - window) / stride) + 1


def tunnel_units(units: str, kind: str | None) -> str:
    """The units of a noise tunnel over maps in ``units``: the mean keeps them; the mean square
    (smoothgrad_sq) and the variance (vargrad) square them."""
    return f"({units})²" if kind in ("smoothgrad_sq", "vargrad") else units


@dataclass(frozen=True)
class Target:
    """The explained score: logit ``S_index``, or ``S_index − S_contrast`` when ``contrast`` is set."""

    index: int
    contrast: int | None = None

    def __post_init__(self) -> None:
        if int(self.index) < 0:
            raise ValueError(f"target: class index must be >= 0, got {self.index}")
        if self.contrast is not None and int(self.contrast) == int(self.index):
            raise ValueError("target: contrast class must differ from the target class")


@dataclass(frozen=True)
class SaliencyMap:
    """One raw, signed saliency map with the metadata needed to reproduce it.

    ``values`` is float32 (h, w) at the model-input resolution (CAMs upsampled bilinearly to it).
    ``params`` are the method's own parameters, every one (defaults filled in), as sorted (name, value) pairs.
    ``completeness_gap`` is ``|Σ attr − (S(x) − S(baseline))| / |S(x) − S(baseline)|`` for methods
    with a completeness property, else None. ``noise_tunnel`` is the noise tunnel the method ran in, as sorted
    (name, value) pairs (``kind``, ``noise``, ``samples``), or None: a method whose own parameters are its
    tunnel (SmoothGrad) has None, the tunnel being in its ``params``.
    """

    method: str
    values: np.ndarray
    params: tuple
    model_id: str
    target: Target
    target_label: str
    layer: str | None
    seed: int
    completeness_gap: float | None
    seconds: float
    noise_tunnel: tuple[tuple[str, Any], ...] | None = None
    extras: dict = field(default_factory=dict, compare=False)  # small method-specific outputs (e.g. superpixels)

    def meta(self, *, versions: bool = True) -> dict[str, Any]:
        """How the map was made, as plain JSON values: method, its parameters, the noise tunnel, model, target,
        layer, seed, completeness and time, and (``versions``) the libraries' versions.

        The saliency NPZ stores this per map without the versions, which it records once per file.
        """
        gap, nt = self.completeness_gap, self.noise_tunnel
        where = f"maps[{self.method!r}]"
        out = {
            "lens": "saliency",
            "method": str(self.method),
            "params": {str(k): json_ready(v, f"{where}.params.{k}") for k, v in self.params},
            "noise_tunnel": None if nt is None else json_ready(dict(nt), f"{where}.noise_tunnel"),
            "model_id": str(self.model_id),
            "target": int(self.target.index),
            "contrast": None if self.target.contrast is None else int(self.target.contrast),
            "target_label": str(self.target_label),
            "layer": None if self.layer is None else str(self.layer),
            "seed": int(self.seed),
            "completeness_gap": None if gap is None else float(gap),
            "steps_used": self.steps_used,
            "seconds": float(self.seconds),
        }
        if versions:
            out["versions"] = library_versions()
        return out

    def at_size(self, height: int, width: int) -> np.ndarray:
        """The map resized bilinearly to (height, width), e.g. the input image's size; float32."""
        if height <= 0 or width <= 0:
            raise ValueError(f"size: height and width must be positive, got {height}×{width}")
        if self.values.shape == (height, width):
            return self.values.copy()
        from glimpse.display import resize_map

        return resize_map(self.values, (height, width))

    @property
    def param_dict(self) -> dict:
        return dict(self.params)

    @property
    def steps_used(self) -> int | None:
        """Gradient evaluations an adaptive path method actually spent (None for other methods)."""
        used = self.extras.get("steps_used")
        return None if used is None else int(np.asarray(used).ravel()[0])


def even_chunks(n: int, batch_size: int) -> list[slice]:
    """Slices of ``range(n)`` in ``ceil(n / batch_size)`` batches whose sizes differ by at most one.

    >>> [s.stop - s.start for s in even_chunks(50, 16)]
    [12, 13, 13, 12]
    """
    if n <= 0:
        return []
    k = -(-n // max(1, int(batch_size)))
    bounds = [round(i * n / k) for i in range(k + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(k)]
