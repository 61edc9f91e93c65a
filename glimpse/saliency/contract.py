"""The method contract: what a saliency method receives and what it returns.

A method (``methods/``) is one small :class:`Method` subclass with a :class:`~glimpse.saliency.base.MethodInfo`
and either

- ``from_pass(ctx, p, params)``: it only needs the activations and gradients of the one shared
  forward+backward pass (:class:`Pass`: gradient, Input×Gradient, the gradient CAMs, NormGrad), so a panel of
  such methods pays for one pass; or
- ``attribute(ctx, x, params)``: it runs its own passes (Captum methods, path and perturbation methods) through
  ``ctx.score`` (:class:`ScoreModel`), with :func:`capture` / :func:`run_pass` where it needs a layer, and says
  what they cost with ``cost(params, where)`` (images through the model, shown before Compute).

Everything a method needs is here or in :mod:`glimpse.saliency.base`; methods never import the registry or
the engine that runs them (``tests/test_import_graph.py``). Maps are returned at any resolution; the engine
upsamples coarser maps bilinearly to the model input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from glimpse.saliency.base import SHARED_PASS, Cost, CostInput, MethodInfo, Target, even_chunks
from glimpse.token_grid import tokens_to_grid

#: the baselines of the path methods (Integrated Gradients, DeepLIFT, GradientSHAP); only ``uniform`` is drawn
BASELINES: list[str] = ["black", "blurred", "uniform", "mean"]


# --------------------------------------------------------------------------------------------------
# the explained score
# --------------------------------------------------------------------------------------------------
class ScoreModel(nn.Module):
    """The explained scalar per example, shape (B, 1): ``S_c`` or ``S_a − S_b`` (logits, or softmax
    probabilities with ``probs=True`` for Score-CAM and RISE).

    Wraps the shared classifier without changing it, so Captum (which hooks ``model`` and its children)
    sees every activation module of the classifier. Batched inputs are passed channels-last, which is
    several times faster for convolutions on CPU and gives the same values.
    """

    def __init__(self, model: nn.Module, target: Target, *, probs: bool = False) -> None:
        super().__init__()
        self.model = model
        self.index = int(target.index)
        self.contrast = None if target.contrast is None else int(target.contrast)
        self.probs = probs
        #: called before every forward while set: the engine sets it to the model line's ``yield_turn`` for the
        #: perturbation methods (hundreds of forwards, no hooks on the model), so a waiting click goes between
        #: two of their batches instead of after the whole map
        self.between: Callable[[], object] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.between is not None:
            self.between()
        if x.ndim == 4 and x.shape[0] > 1:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.model(x)
        if not isinstance(out, torch.Tensor):  # Hugging Face ModelOutput when not already unwrapped
            out = out.logits
        out = out.float()
        if self.probs:
            out = out.softmax(-1)
        s = out[:, self.index]
        if self.contrast is not None:
            s = s - out[:, self.contrast]
        return s.unsqueeze(1)


# --------------------------------------------------------------------------------------------------
# what a method receives
# --------------------------------------------------------------------------------------------------
@dataclass
class Context:
    """Everything a method needs for one explanation. Built by :func:`glimpse.saliency.explain`."""

    bundle: Any
    target: Target
    layer: str | None
    seed: int
    batch_size: int
    score: ScoreModel
    prob_score: ScoreModel
    progress: Callable[[float], None] = field(default=lambda f: None)

    @property
    def input_range(self) -> tuple[float, float]:
        return self.bundle.input_range

    def generator(self, salt: int = 0) -> torch.Generator:
        """A new CPU generator seeded from ``seed`` and ``salt`` (one salt per kind of draw).

        Every random draw of a method comes from one of these (NumPy draws from ``np.random.default_rng(seed)``),
        never from torch's, NumPy's or Python's global generator: the same seed gives the same map bit for bit,
        the caller's generators are left alone, and concurrent explanations (Streamlit sessions are threads)
        cannot disturb each other. Noise is drawn on the CPU so results match across devices; CPU draws are
        the same in one call or batch by batch.
        """
        g = torch.Generator()
        g.manual_seed((int(self.seed) * 1_000_003 + salt) % 2**63)  # any seed, within manual_seed's range
        return g

    def black(self, x: torch.Tensor) -> torch.Tensor:
        """The black image (pixel 0) in model-input units, shaped like ``x``."""
        mean = torch.tensor(self.bundle.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.bundle.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return ((0.0 - mean) / std).expand_as(x).contiguous()

    def baseline(self, kind: str, x: torch.Tensor, count: int = 1) -> torch.Tensor:
        """Baseline(s) for path methods (:data:`BASELINES`): ``black``, ``blurred`` (Gaussian σ = 1/20 of the
        side), ``uniform`` noise over the input range or ``mean`` (the image's mean colour everywhere).
        Returns (count·B, 3, H, W)."""
        if kind == "black":
            b = self.black(x)
        elif kind == "mean":
            b = x.mean(dim=(2, 3), keepdim=True).expand_as(x).contiguous()
        elif kind == "blurred":
            b = gaussian_blur(x, sigma=max(x.shape[-2:]) / 20.0)
        elif kind == "uniform":
            lo, hi = self.input_range
            shape = (count * x.shape[0],) + tuple(x.shape[1:])
            u = torch.rand(shape, generator=self.generator(17), dtype=torch.float32)
            return (lo + (hi - lo) * u).to(x.device, x.dtype)
        else:
            raise ValueError(f"baseline: unknown {kind!r}; known: {', '.join(BASELINES)}")
        return b.repeat(count, 1, 1, 1) if count > 1 else b

    def chunks(self, n: int) -> list[slice]:
        """``n`` items in ``ceil(n / batch_size)`` batches of nearly equal size: 50 at 16 run as 12 + 13 + 13 +
        12, not 16 + 16 + 16 + 2, whose last small batch costs almost a full pass."""
        return even_chunks(n, self.batch_size)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) with reflect padding."""
    radius = max(1, int(math.ceil(3 * sigma)))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    y = F.pad(y, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(y, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


# --------------------------------------------------------------------------------------------------
# the shared pass
# --------------------------------------------------------------------------------------------------
@dataclass
class Pass:
    """One forward+backward: input ``x``, score (B,), ``dx = ∂S/∂x`` (or None), and per layer the
    activations ``acts[l]`` (B, C, h, w) and gradients ``grads[l]`` (token outputs reshaped to a grid)."""

    x: torch.Tensor
    score: torch.Tensor
    dx: torch.Tensor | None
    acts: dict
    grads: dict


def to_grid(t: torch.Tensor, bundle) -> torch.Tensor:
    """Layer output -> (B, C, h, w): ViT tokens are reshaped with the bundle's token grid."""
    if t.ndim == 4:
        return t
    if t.ndim == 3 and bundle.token_grid is not None:
        return tokens_to_grid(t, bundle.token_grid)
    raise ValueError(
        f"layer: output of shape {tuple(t.shape)} is not a (B, C, h, w) feature map"
        + ("" if bundle.token_grid is None else " or a (B, tokens, C) sequence")
        + "; pick a convolutional or transformer block"
    )


class capture:
    """Context manager: forward hooks that keep each layer's output and make it a leaf of the graph
    when nothing upstream requires grad (frozen weights, input without grad), so ``∂S/∂A`` exists.
    Hooks are removed on exit, also when the model raises."""

    def __init__(self, bundle, layers: Sequence[str]) -> None:
        self.bundle = bundle
        self.layers = list(dict.fromkeys(layers))
        self.outputs: dict[str, list[torch.Tensor]] = {}
        self.handles: list = []

    def _hook(self, name: str):
        def hook(module, inputs, output):
            t = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(t, torch.Tensor):
                t = getattr(output, "last_hidden_state", None)
                if t is None:
                    raise ValueError(f"layer: {name!r} returns {type(output).__name__}, not a tensor")
            replaced = False
            if torch.is_grad_enabled() and not t.requires_grad:
                t = t.detach().requires_grad_(True)
                replaced = True
            self.outputs.setdefault(name, []).append(t)
            if replaced:
                if isinstance(output, tuple):
                    return (t,) + tuple(output[1:])
                if isinstance(output, list):
                    return [t] + list(output[1:])
                if isinstance(output, torch.Tensor):
                    return t
            return None

        return hook

    def __enter__(self) -> capture:
        try:
            for name in self.layers:
                self.handles.append(self.bundle.module(name).register_forward_hook(self._hook(name)))
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def __exit__(self, *exc) -> None:
        self.remove()

    def get(self, name: str) -> torch.Tensor:
        outs = self.outputs.get(name, [])
        if len(outs) != 1:
            raise ValueError(
                f"layer: module {name!r} ran {len(outs)} times in one forward pass; pick a module that runs once"
            )
        return outs[0]


def run_pass(ctx: Context, x: torch.Tensor, layers: Sequence[str], need_input_grad: bool) -> Pass:
    """ONE forward and ONE backward giving ∂S/∂x (if asked) and (A, ∂S/∂A) at every layer in ``layers``."""
    layers = list(dict.fromkeys(layers))
    x = x.detach().requires_grad_(need_input_grad)
    with torch.enable_grad(), capture(ctx.bundle, layers) as cap:
        score = ctx.score(x)[:, 0]
        raw = [cap.get(name) for name in layers]
        wrt = ([x] if need_input_grad else []) + raw
        if not wrt:
            raise ValueError("methods: nothing to differentiate (no input gradient and no layer)")
        grads = torch.autograd.grad(score.sum(), wrt)
    dx = grads[0] if need_input_grad else None
    layer_grads = grads[1:] if need_input_grad else grads
    acts = {n: to_grid(a.detach(), ctx.bundle) for n, a in zip(layers, raw)}
    gacts = {n: to_grid(g.detach(), ctx.bundle) for n, g in zip(layers, layer_grads)}
    return Pass(x=x.detach(), score=score.detach(), dx=None if dx is None else dx.detach(), acts=acts, grads=gacts)


# --------------------------------------------------------------------------------------------------
# the method base class and what it returns
# --------------------------------------------------------------------------------------------------
class Method:
    """Base class of a registered method. Subclasses set ``info`` and override one hook."""

    info: MethodInfo
    #: Uses the shared forward+backward pass (override ``from_pass``).
    shared: bool = False
    #: ``attribute`` accepts a batch of inputs (noise tunnel batches its samples through it).
    batchable: bool = True

    # --- shared-pass methods -------------------------------------------------------------------
    def needs_input_grad(self, params: dict) -> bool:
        return False

    def layers(self, ctx: Context, params: dict) -> list[str]:
        return [ctx.layer] if self.info.needs_layer else []

    def from_pass(self, ctx: Context, p: Pass, params: dict) -> torch.Tensor:
        """(B, h, w) maps from the shared pass."""
        raise NotImplementedError

    # --- self-contained methods ----------------------------------------------------------------
    def attribute(self, ctx: Context, x: torch.Tensor, params: dict) -> Attribution:
        """Maps for a batch ``x`` (B, 3, H, W) of model inputs."""
        raise NotImplementedError

    # --- defaults that depend on the model --------------------------------------------------------
    def defaults(self, input_size: tuple[int, int] | None = None) -> dict:
        """The parameters a panel starts from for a model whose input is ``input_size`` (H, W): ``info.params``
        unless the method scales a default to the input (occlusion's window). None: the 224-px defaults."""
        return dict(self.info.params)

    # --- which models ------------------------------------------------------------------------------
    def applies(self, bundle) -> str | None:
        """None when the method can explain ``bundle``'s model, else why not (the pages hide it with the reason,
        ``explain`` refuses it with the reason). Every method applies to every model unless it says otherwise."""
        return None

    # --- randomness ------------------------------------------------------------------------------
    def uses_seed(self, params: dict) -> bool:
        """Whether the map for ``params`` depends on the seed (a noise tunnel always makes it depend).

        Every draw comes from generators seeded from ``explain``'s seed (``Context.generator``), never from
        a global one, so the same seed gives the same map bit for bit."""
        return self.info.stochastic

    # --- noise tunnel given by the method's own parameters (SmoothGrad entry) -----------------------
    def own_noise_tunnel(self, params: dict) -> dict | None:
        return None

    # --- what a map measures and what it costs ------------------------------------------------------
    def units(self, params: dict) -> str:
        """What the map for ``params`` measures: ``info.units``, or a unit of the method's own when it
        declares none (so an undeclared method never shares a colour scale with another)."""
        return self.info.units or f"[{self.info.name}]"

    def cost(self, params: dict, where: CostInput) -> Cost | None:
        """Images pushed through the model to explain one image with ``params`` (no noise tunnel; the engine
        multiplies by its samples). A shared-pass method costs the one shared pass (paid once per group);
        a self-contained method that does not override this has an unknown cost (None)."""
        return SHARED_PASS if self.shared else None


@dataclass
class Attribution:
    """What a method returns: maps (B, h, w) and, for completeness, Σ attribution and S(x) − S(baseline)."""

    maps: Any
    total: Any = None
    expected: Any = None
    extras: dict = field(default_factory=dict)
