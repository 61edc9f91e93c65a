"""``python -m glimpse blindspot SOURCE TARGET --out DIR``: a level-set traversal (a blind spot of the model).

Walks from SOURCE towards TARGET while the model's confidence in SOURCE's class stays within --pthresh of its
start. Writes the path's frames (frame-NNN.png) and the end point (end.png), at the source image's size, and
prints a JSON summary: the start and end confidence in the source class and the end point's L2, L-infinity and
SSIM distances to the target.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from glimpse.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "blindspot",
        help="level-set traversal from SOURCE to TARGET at constant confidence in SOURCE's class",
        description="Level-set traversal (Exploring Geometry of Blind Spots in Vision Models, NeurIPS 2023).",
    )
    p.add_argument("source", help="the image whose class is held")
    p.add_argument("target", help="the image walked towards")
    p.add_argument("--model", default=None, help="classifier id (default: efficientnet-lite0)")
    p.add_argument("--steps", type=int, default=400, help="iterations (default 400, as published)")
    p.add_argument("--step-size", type=float, default=1e-2, help="fraction of the projected difference per step")
    p.add_argument("--pthresh", type=float, default=0.2, help="largest allowed drop of the source confidence")
    p.add_argument("--adv-step", type=float, default=2e-3, help="bound of the accumulated correction")
    p.add_argument("--frames", type=int, default=8, help="frames of the path to write (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cuda, mps or cpu")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the frames and end.png (created)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from glimpse.images import load_image

    if args.steps < 1:
        raise CliError(f"--steps: must be at least 1, got {args.steps}")
    source, target = load_image(args.source), load_image(args.target)
    from glimpse.lab import level_set_traversal
    from glimpse.lab.common import to_tensor, to_uint8
    from models.lab import model_input
    from models.registry import DEFAULT_CLASSIFIER, load_classifier

    bundle = load_classifier(args.model or DEFAULT_CLASSIFIER, device=args.device)
    with bundle.lock:
        tr = level_set_traversal(bundle.model, source, target, model_input(bundle), steps=args.steps,
                                 step_size=args.step_size, pthresh=args.pthresh, adv_step=args.adv_step,
                                 seed=args.seed, frames=args.frames)  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = source.shape[:2]
    for step, frame in tr.frames:
        Image.fromarray(to_uint8(to_tensor(frame, None, "cpu"), size)).save(out / f"frame-{step:03d}.png")
    Image.fromarray(to_uint8(to_tensor(tr.end, None, "cpu"), size)).save(out / "end.png")
    summary = {"model": bundle.model_id, "source": args.source, "target": args.target,
               "source_label": bundle.labels[tr.source_class], "target_label": bundle.labels[tr.target_class],
               **tr.summary(), "frames": [f"frame-{s:03d}.png" for s, _ in tr.frames], "end": "end.png"}  # fmt: skip
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
