"""What the scripts that train the small embedded classifiers share: their common options, the recipe's set-up
(threads, the seed, Adam under a cosine schedule) and how a checkpoint ships with its report."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


def add_common_options(p: argparse.ArgumentParser, *, lr: float, batch_size: int = 64) -> None:
    """``--batch-size``, ``--lr``, ``--seed``, ``--threads`` and ``--out`` (the folder the model ships to)."""
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)


def begin_training(
    args: argparse.Namespace, build: Callable[[], nn.Module], total: int
) -> tuple[nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """``args.threads`` threads, torch's generator seeded with ``args.seed``, then the model ``build()`` makes
    (its initial weights drawn from that generator), Adam at ``args.lr`` and a cosine schedule over ``total``
    scheduler steps."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    return model, opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)


def settings(args: argparse.Namespace) -> dict:
    """The options a run was made with, JSON-ready (paths as strings)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def ship(model: nn.Module, out: Path, weights: str, report: dict, report_name: str) -> None:
    """Print ``report`` and write the model's weights (float32 safetensors) and the report (JSON) into ``out``."""
    from safetensors.torch import save_file

    print(json.dumps(report, indent=2))
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / weights)
    (out / report_name).write_text(json.dumps(report, indent=2) + "\n")
