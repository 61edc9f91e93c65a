"""Train a BlockDigits classifier, normally or adversarially (PGD, Madry et al. 2018), and ship it.

    python -m training.blockdigits.train --mode standard --out models/embedded/blockdigits
    python -m training.blockdigits.train --mode robust --norm linf --eps 0.3 --out models/embedded/blockdigits

Data: :func:`glimpse.evaluation.blockdigits.blockdigits` ("train" part; each epoch draws new placements,
two copies of every digit). Adversarial training replaces every batch by its PGD adversary inside the
``--norm`` ball of radius ``--eps`` around the image, in pixel space [0, 1] (random start, ``--pgd-steps``
steps of 2.5·eps/steps); the radius grows linearly over the first ``--eps-warmup`` epochs. Writes ``OUT/<mode>.safetensors`` (float32) and ``OUT/<mode>.json`` (settings,
clean and PGD test accuracy, seconds). Float32, CPU, deterministic from ``--seed``.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from glimpse.evaluation.blockdigits import blockdigits
from models.blockdigits import MEAN, STD, BlockDigitsCNN
from training.common import add_common_options, begin_training, settings, ship


def normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - MEAN) / STD


def _project(delta: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    if norm == "linf":
        return delta.clamp(-eps, eps)
    flat = delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return delta * (eps / flat).clamp(max=1.0)


def pgd(model, x, y, *, norm: str, eps: float, steps: int, generator: torch.Generator) -> torch.Tensor:
    """The PGD adversary of ``x`` (pixels in [0, 1]) for labels ``y``: maximises the cross-entropy."""
    step = 2.5 * eps / steps
    if norm == "linf":
        delta = (torch.rand(x.shape, generator=generator) * 2 - 1) * eps
    else:
        delta = _project(torch.randn(x.shape, generator=generator) * eps, norm, eps)
    delta = ((x + delta).clamp(0, 1) - x).requires_grad_(True)
    for _ in range(steps):
        loss = F.cross_entropy(model(normalise(x + delta)), y)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            if norm == "linf":
                delta += step * grad.sign()
            else:
                delta += step * grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            delta.copy_(_project(delta, norm, eps))
            delta.copy_((x + delta).clamp(0, 1) - x)
    return (x + delta).detach()


def accuracy(model, x, y, **attack) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), 256):
        xb, yb = x[i : i + 256], y[i : i + 256]
        if attack:
            xb = pgd(model, xb, yb, **attack)
        with torch.no_grad():
            correct += int((model(normalise(xb)).argmax(1) == yb).sum())
    return correct / len(x)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("standard", "robust"), required=True)
    p.add_argument("--norm", choices=("linf", "l2"), default="linf")
    p.add_argument("--eps", type=float, default=0.3, help="PGD radius in pixel units (linf 0.3; l2 try 2.0)")
    p.add_argument("--pgd-steps", type=int, default=7)
    p.add_argument(
        "--eps-warmup",
        type=int,
        default=5,
        help="epochs over which the radius grows linearly to --eps (at the "
        "full radius from the start, training stays at chance)",
    )
    p.add_argument("--epochs", type=int, default=30)
    add_common_options(p, lr=1e-3)
    args = p.parse_args(argv)
    model, opt, sched = begin_training(args, BlockDigitsCNN, args.epochs)
    generator = torch.Generator().manual_seed(args.seed)
    attack = {"norm": args.norm, "eps": args.eps, "steps": args.pgd_steps, "generator": generator}
    start = time.perf_counter()
    for epoch in range(args.epochs):
        x, y = blockdigits("train", seed=1000 * args.seed + epoch, copies=2).tensors()
        order = torch.randperm(len(x), generator=generator)
        model.train()
        total = 0.0
        for i in range(0, len(x), args.batch_size):
            idx = order[i : i + args.batch_size]
            xb, yb = x[idx], y[idx]
            if args.mode == "robust":
                model.eval()  # no dropout or batch norm here, but the attack sees the model as it is used
                ramp = min(1.0, (epoch + (i + len(idx)) / len(x)) / args.eps_warmup) if args.eps_warmup else 1.0
                xb = pgd(model, xb, yb, **{**attack, "eps": args.eps * ramp})
                model.train()
            loss = F.cross_entropy(model(normalise(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / len(x):.4f}", flush=True)
    seconds = time.perf_counter() - start
    x_test, y_test = blockdigits("test", seed=0).tensors()
    eval_attack = {**attack, "steps": 20, "generator": torch.Generator().manual_seed(1)}
    report = {
        "mode": args.mode,
        "settings": settings(args),
        "test_accuracy": accuracy(model, x_test, y_test),
        f"pgd20_{args.norm}_{args.eps}_accuracy": accuracy(model, x_test, y_test, **eval_attack),
        "train_seconds": round(seconds, 1),
    }
    ship(model, args.out, f"{args.mode}.safetensors", report, f"{args.mode}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
