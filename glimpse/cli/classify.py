"""``python -m glimpse classify IMAGE [--model ID] [--top K] [--json] [--device D]``: top-K labels."""

from __future__ import annotations

import argparse
import json
import sys

from glimpse.cli import CliError
from glimpse.cli.options import options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "classify",
        help="print a classifier's top-K labels and probabilities for an image",
        description="Classify IMAGE with the embedded EfficientNet-Lite0 or any registry id.",
        parents=[options(device="auto", model="classifier", json="the labels and probabilities")],
    )
    p.add_argument("image", help="path to an image file (PNG, JPEG, WebP, TIFF, GIF, ...)")
    p.add_argument("--top", type=int, default=5, metavar="K", help="how many labels to print (default 5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from glimpse.images import load_image

    if args.top < 1:
        raise CliError(f"--top: must be at least 1, got {args.top}")
    pixels = load_image(args.image)  # before importing torch: a bad path fails in a fraction of a second
    from models.registry import DEFAULT_CLASSIFIER, load_classifier

    bundle = load_classifier(args.model or DEFAULT_CLASSIFIER, device=args.device)
    preds = bundle.predict(pixels, top=args.top)
    if args.json:
        out = {
            "image": args.image,
            "model": bundle.model_id,
            "top": [{"index": i, "label": label, "probability": p} for i, label, p in preds],
        }
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        width = max(len(label) for _, label, _ in preds)
        for i, label, p in preds:
            sys.stdout.write(f"{p:7.2%}  {label:<{width}}  ({i})\n")
    return 0
