"""Tiny analytic classifiers for saliency tests: a CNN, a ViT-like token model and a linear model, wrapped in
bundles; and a snapshot of the global random generators."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn

from glimpse.token_grid import TokenGrid
from models.registry import ClassifierBundle, freeze

LABELS = ("apple", "banana", "cherry", "date palm", "elderberry")


class TinyCNN(nn.Module):
    """conv -> ReLU -> conv (stride 2) -> ReLU [= "act2", 8×16×16] -> 1×1 conv -> ReLU -> linear.

    The 1×1 conv + ReLU + linear head (no global pooling) makes ∂S/∂A vary over locations, so the CAM
    variants differ from each other.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.act2 = nn.ReLU()
        self.mix = nn.Conv2d(8, 4, 1)
        self.act3 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(4 * 4 * 4, len(LABELS))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        h = self.act2(self.conv2(self.act1(self.conv1(x))))
        h = self.pool(self.act3(self.mix(h)))
        return self.fc(h.flatten(1))


class TokenBlock(nn.Module):
    """y = x + GELU(W (x + mean_tokens x)): mixes tokens so CLS depends on every patch."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(dim, dim)
        self.act = nn.GELU()

    def forward(self, x):
        return x + self.act(self.lin(x + x.mean(1, keepdim=True)))


class TinyViT(nn.Module):
    """8×8 patches of a 32×32 input -> 16 tokens + CLS, two token blocks, linear head on CLS."""

    def __init__(self, dim: int = 8, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.patch = nn.Conv2d(3, dim, 8, stride=8)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.Sequential(TokenBlock(dim), TokenBlock(dim))
        self.head = nn.Linear(dim, len(LABELS))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(x.shape[0], -1, -1), t], dim=1)
        return self.head(self.blocks(t)[:, 0])


def cnn_bundle(model: nn.Module | None = None) -> ClassifierBundle:
    return ClassifierBundle(
        model_id="tiny-cnn",
        model=freeze(model or TinyCNN(), torch.device("cpu")),
        labels=LABELS,
        input_size=(32, 32),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        target_layers=("act2", "act1"),
        device=torch.device("cpu"),
    )


def vit_bundle() -> ClassifierBundle:
    return ClassifierBundle(
        model_id="tiny-vit",
        model=freeze(TinyViT(), torch.device("cpu")),
        labels=LABELS,
        input_size=(32, 32),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        target_layers=("blocks.1", "blocks.0"),
        device=torch.device("cpu"),
        kind="vit",
        token_grid=TokenGrid(prefix=1, height=4, width=4),
    )


class LinearNet(nn.Module):
    """S(x) = W·vec(x) + c: every gradient method is exact on it (∇S = W everywhere)."""

    def __init__(self, side: int = 32, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.fc = nn.Linear(3 * side * side, len(LABELS))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)

    def forward(self, x):
        return self.fc(x.flatten(1))


def linear_bundle() -> ClassifierBundle:
    return ClassifierBundle(
        model_id="tiny-linear",
        model=freeze(LinearNet(), torch.device("cpu")),
        labels=LABELS,
        input_size=(32, 32),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        target_layers=(),
        device=torch.device("cpu"),
    )


def global_rng_state() -> tuple:
    """A comparable snapshot of torch's CPU generator, NumPy's global generator and Python's ``random``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return torch.get_rng_state().numpy().tobytes(), (kind, keys.tobytes(), pos, has_gauss, cached), random.getstate()


def image(h: int = 40, w: int = 48, seed: int = 0) -> np.ndarray:
    """A smooth random uint8 RGB image (smooth so superpixels are meaningful)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([np.sin(6 * xx + c) + np.cos(5 * yy - c) for c in range(3)], axis=-1)
    img = 127 + 60 * base + rng.normal(0, 10, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


#: Small parameters that keep every method fast on the tiny models.
FAST_PARAMS = {
    "integrated_gradients": {"steps": 8},
    "gradient_shap": {"samples": 4, "baselines": 2},
    "smoothgrad": {"samples": 4},
    "smooth_gradcampp": {"samples": 2},
    "scorecam": {"channels": 0},
    "occlusion": {"window": 8, "stride": 8},
    "rise": {"masks": 16, "grid": 4},
    "lime": {"samples": 16, "segments": 8},
    "kernel_shap": {"samples": 16, "segments": 8},
}


def param_variants(name: str, params: dict, more: dict | None = None) -> list[dict]:
    """Method ``name``'s parameters ``params[name]``, then each other value of each categorical parameter, one
    at a time, then ``more[name]``'s extra settings (each over the base)."""
    from glimpse.saliency import REGISTRY

    info = REGISTRY[name].info
    base = dict(params.get(name, {}))
    out = [base]
    for key, allowed in info.choices.items():
        default = base.get(key, info.params[key])
        out += [{**base, key: value} for value in allowed if value != default]
    return out + [{**base, **extra} for extra in (more or {}).get(name, [])]


def hook_count(model: nn.Module) -> int:
    """Forward/backward hooks (of every kind) on the model and its submodules."""
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        n += len(getattr(m, "_backward_pre_hooks", {}))
        n += len(getattr(m, "_forward_hooks_with_kwargs", {}))
    return n
