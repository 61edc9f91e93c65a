"""Feature inversion in gradients, on the paper's own synthetic data (Shah, Jain & Netrapalli, NeurIPS 2021, §5).

The data: ``d`` coordinates, label ``y = ±1`` with probability ½ each, and ``x = y·e_j``: one signal coordinate
``j`` carries the label, every other coordinate is 0. With probability ``1/d`` the signal sits on coordinate 0,
otherwise on one of the other ``d − 1`` coordinates chosen uniformly (the reference code's
``SemiRandomSignalCoordinate``). A one-hidden-layer ReLU network learns it perfectly, trained normally or
adversarially (ℓ∞ PGD).

The finding (the paper's "feature inversion in gradients"): the *smallest* coordinate of a standard model's
input gradient is most often the signal, the largest almost never; a robust model's largest coordinate is the
signal. The reference notebook reports P[top-most |∂CE/∂x| coordinate is the signal] = 0.041 (standard) and
1.000 (robust), and P[bottom-most is the signal] such that their difference, the attribution quality at one
coordinate, is −0.521 and +1.000. Here the same comparison is measured, and DiffROAR
(:mod:`glimpse.evaluation.diffroar`) is run on it by retraining: keep the top-k or the bottom-k coordinates of
each point's gradient (the rest set to the training mean), retrain from scratch, and compare accuracies. A
standard model's DiffROAR is then negative at small k and a robust model's positive: the paper's sign, which the
BlockDigits CNNs do not show (their gradients leak into the null block, but the kept pixels still show the digit).

Scaled to a CPU: width 500 and 40 epochs instead of 25,000 and 500, and ε = 0.3 instead of 0.45 (at this width
and length, training at 0.45 stalls at chance for some seeds); see :func:`feature_inversion`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glimpse.evaluation.diffroar import DiffRoarResult, diffroar
from glimpse.evaluation.files import EvaluationFiles
from glimpse.evaluation.result import Result

#: the reference notebook's values (standard, robust): P[top-most gradient coordinate is the signal], and
#: the attribution quality at one coordinate (P[top-most] − P[bottom-most])
PAPER = {"p_top_signal": (0.041, 1.000), "attribution_quality": (-0.521, 1.000)}
#: DiffROAR levels: fractions of the ``d`` coordinates kept (0.1 of 10 is one coordinate)
LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


@dataclass(frozen=True)
class SignalCoordinates:
    """``x`` float32 (N, d) with one non-zero coordinate ±1, ``y`` int64 (N,) in {0, 1}, ``signal`` int64 (N,)."""

    x: torch.Tensor
    y: torch.Tensor
    signal: torch.Tensor


def signal_coordinates(n: int, *, d: int = 10, seed: int = 0) -> SignalCoordinates:
    """``n`` points ``x = (2y − 1)·e_j`` (module docstring), deterministic from ``seed``.

    >>> data = signal_coordinates(4, d=5, seed=0)
    >>> tuple(data.x.shape), bool((data.x.abs().sum(1) == 1).all())
    ((4, 5), True)
    >>> bool((data.x[torch.arange(4), data.signal] == 2.0 * data.y - 1).all())
    True
    """
    if n < 1 or d < 2:
        raise ValueError(f"signal_coordinates: n >= 1 and d >= 2, got n={n}, d={d}")
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    on_first = torch.rand(n, generator=g) < 1.0 / d
    j = torch.where(on_first, 0, 1 + torch.randint(0, d - 1, (n,), generator=g))
    x = torch.zeros(n, d)
    x[torch.arange(n), j] = 2.0 * y.float() - 1.0
    return SignalCoordinates(x, y.long(), j.long())


class FCN(nn.Module):
    """One hidden ReLU layer: (N, …, d) flattened -> logits (N, 2). Takes images shaped (N, 1, 1, d) too, so
    :func:`~glimpse.evaluation.diffroar.diffroar` can retrain it on masked points."""

    def __init__(self, d: int = 10, width: int = 500, classes: int = 2) -> None:
        super().__init__()
        self.hidden = nn.Linear(d, width)
        self.out = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.hidden(x.flatten(1))))


def pgd_linf(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 8) -> torch.Tensor:
    """The reference code's ℓ∞ PGD: no random start, ``steps`` signed-gradient steps of 0.25·eps, projected to
    the ε-ball and to the data's range [−1, 1]."""
    delta = torch.zeros_like(x, requires_grad=True)
    for _ in range(steps):
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x + delta), y), delta)
        with torch.no_grad():
            delta += 0.25 * eps * grad.sign()
            delta.clamp_(-eps, eps)
            delta.copy_((x + delta).clamp(-1.0, 1.0) - x)
    return (x + delta).detach()


def train_fcn(
    data: SignalCoordinates,
    *,
    eps: float = 0.0,
    width: int = 500,
    epochs: int = 40,
    lr: float = 0.1,
    batch_size: int = 250,
    seed: int = 0,
) -> FCN:
    """The reference recipe: SGD (no momentum) at ``lr``, ×0.75 every 50 epochs (floor 0.01), batches of 250;
    with ``eps`` > 0 every batch is replaced by its PGD adversary (:func:`pgd_linf`). Returned in eval mode."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = FCN(data.x.shape[1], width)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: max(0.01, 0.75 ** (e // 50)))
    for _ in range(epochs):
        order = torch.randperm(len(data.x), generator=generator)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            xb, yb = data.x[idx], data.y[idx]
            if eps > 0:
                xb = pgd_linf(model, xb, yb, eps)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


def loss_gradients(model: nn.Module, data: SignalCoordinates) -> np.ndarray:
    """(N, d) float32: ``|∂ CE(f(x), y) / ∂x|`` per point (the paper's attribution)."""
    x = data.x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), data.y, reduction="sum"), x)
    return grad.abs().numpy().astype(np.float32)


def inversion_scores(gradients: np.ndarray, signal: np.ndarray) -> dict[str, float]:
    """``p_top_signal`` and ``p_bottom_signal``: how often the largest / smallest ``|gradient|`` coordinate is
    the signal; ``attribution_quality`` = their difference (the paper's AQ at one coordinate, in [−1, 1]).

    >>> inversion_scores(np.array([[3.0, 1.0, 2.0], [0.5, 2.0, 1.0]]), np.array([0, 0]))
    {'p_top_signal': 0.5, 'p_bottom_signal': 0.5, 'attribution_quality': 0.0}
    """
    g = np.abs(np.asarray(gradients, dtype=np.float64))
    signal = np.asarray(signal)
    if g.ndim != 2 or signal.shape != (g.shape[0],):
        raise ValueError(f"inversion_scores: gradients (N, d) and signal (N,), got {g.shape} and {signal.shape}")
    top = float(np.mean(g.argmax(1) == signal))
    bottom = float(np.mean(g.argmin(1) == signal))
    return {"p_top_signal": top, "p_bottom_signal": bottom, "attribution_quality": top - bottom}


@dataclass(frozen=True)
class InversionModel:
    """One trained model (``standard`` or ``robust``): its accuracies, its gradients' scores and its DiffROAR."""

    name: str
    eps: float
    test_accuracy: float
    robust_accuracy: float
    scores: dict[str, float]
    curve: DiffRoarResult | None
    train_seconds: float

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.name,
            "method": "gradient",
            "eps": self.eps,
            "test_accuracy": self.test_accuracy,
            "robust_accuracy": self.robust_accuracy,
            **self.scores,
        }
        if self.curve is not None:
            out["diffroar"] = {f"{k:g}": float(v) for k, v in zip(self.curve.levels, self.curve.diffroar.mean(1))}
        return out


@dataclass(frozen=True)
class InversionResult(Result):
    """Both models and how they were made."""

    benchmark: ClassVar[str] = "feature-inversion"
    models: tuple[InversionModel, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        return [m.row() for m in self.models]

    def curves(self) -> list[DiffRoarResult]:
        return [m.curve for m in self.models if m.curve is not None]

    def files(self, stem: str = "inversion") -> EvaluationFiles:
        """The check's files: its rows, its ``meta()`` and each curve's (``runs``), the curves' retrainings."""
        return EvaluationFiles(stem, tuple(self.curves()), rows=self.rows(), extra={"meta": self.meta()})

    def records(self) -> list[dict[str, Any]]:
        return self.rows()  # each row names its network ("standard", "robust")

    def arrays(self) -> dict[str, np.ndarray]:
        """Each network's DiffROAR retrainings (:meth:`DiffRoarResult.arrays`)."""
        return {key: value for curve in self.curves() for key, value in curve.arrays().items()}

    def made_with(self) -> dict[str, Any]:
        return {
            "data": "signal coordinates (Shah et al. 2021, §5): x = (2y-1)·e_j, P[j = 0] = 1/d",
            "settings": self.settings,
            "paper": {k: {"standard": v[0], "robust": v[1]} for k, v in PAPER.items()},
        }


def feature_inversion(
    *,
    d: int = 10,
    width: int = 500,
    epochs: int = 40,
    eps: float = 0.3,
    n_train: int = 10_000,
    n_test: int = 1_000,
    seed: int = 0,
    levels: Sequence[float] | None = LEVELS,
    seeds: Sequence[int] = (0, 1),
    retrain_epochs: int = 5,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[float, str], None] | None = None,
    workers: int = 1,
) -> InversionResult:
    """Train a standard and an ℓ∞-robust (``eps``) FCN on the synthetic data, score their input gradients
    (:func:`inversion_scores`) on the test points, and, unless ``levels`` is None, run DiffROAR on each model's
    gradients (retraining an FCN of the same width for ``retrain_epochs`` epochs per level, side and seed;
    ``workers`` of them at once, as in :func:`~glimpse.evaluation.diffroar.diffroar`).
    """
    report = progress or (lambda f, m: None)
    train = signal_coordinates(n_train, d=d, seed=seed)
    test = signal_coordinates(n_test, d=d, seed=seed + 1)
    models = []
    for i, (name, radius) in enumerate((("standard", 0.0), ("robust", float(eps)))):
        report(i / 2, f"training the {name} network")
        start = time.perf_counter()
        model = train_fcn(train, eps=radius, width=width, epochs=epochs, seed=seed)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            acc = float((model(test.x).argmax(1) == test.y).float().mean())
        adv = pgd_linf(model, test.x, test.y, float(eps), steps=20)
        with torch.no_grad():
            robust_acc = float((model(adv).argmax(1) == test.y).float().mean())
        grads = loss_gradients(model, test)
        curve = None
        if levels:
            train_grads = loss_gradients(model, train)
            curve = diffroar(
                functools.partial(FCN, d, width),
                train.x.numpy()[:, None, None, :],
                train.y.numpy(),
                test.x.numpy()[:, None, None, :],
                test.y.numpy(),
                train_grads[:, None, :],
                grads[:, None, :],
                normalise=lambda t: t,
                model_id=f"synthetic-{name}",
                method="gradient",
                params={"attribution": "|dCE/dx|"},
                levels=levels,
                seeds=seeds,
                epochs=retrain_epochs,
                cache_dir=cache_dir,
                workers=workers,
                progress=lambda f, m, i=i, name=name: report((i + 0.5 + 0.5 * f) / 2, f"{name}: {m}"),
            )
        scores = inversion_scores(grads, test.signal.numpy())
        models.append(InversionModel(name, radius, acc, robust_acc, scores, curve, round(seconds, 1)))
    report(1.0, "done")
    settings = {
        "d": d,
        "width": width,
        "epochs": epochs,
        "eps": eps,
        "n_train": n_train,
        "n_test": n_test,
        "seed": seed,
        "levels": list(levels or ()),
        "seeds": list(seeds),
        "retrain_epochs": retrain_epochs,
        "robust_accuracy_attack": "PGD linf, 20 steps of 0.25 eps, no random start",
    }
    return InversionResult(tuple(models), settings)
