"""``python -m glimpse probe IMAGE|--prompt TEXT --xy X,Y [--method A,B] [--json] [--out bundle.zip]``.

One pixel through every lens: the Compare run of ``report`` (saliency maps of the classifier, the complexity
maps and, with ``--prompt``, the words' attention), read at pixel (X, Y) of the image by :func:`glimpse.probe.probe`:
each map's value at the cell holding the pixel and its rank percentile in the map, and the words ranked by their
attention there. ``--candidate P --candidate Q …`` also classifies the image with the text-to-image model
(``--t2i-model``, the diffusion classifier at ``--dc-samples`` timesteps) and reads its error difference there:
the runner-up's denoising error minus the winner's, positive where the winning prompt fits the pixel better.
``--out`` writes the run's bundle (with that map, when made) and the probe as its ``probe`` table.
"""

from __future__ import annotations

import argparse
import json
import sys

from glimpse.cli import CliError
from glimpse.cli.options import options
from glimpse.cli.report import add_run_options, compare_run


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "probe",
        help="read one pixel in every map of a run: saliency, complexity and (with --prompt) the words' attention",
        description=__doc__.split("\n\n")[1],
        parents=[
            options(
                device="auto",
                model="classifier",
                seed="the saliency methods' random draws",
                out="the run's bundle with the probe (a .zip file)",
                json="the probe",
            )
        ],
    )
    add_run_options(p)
    p.add_argument("--xy", required=True, metavar="X,Y", help="the pixel: column X and row Y of the image")
    p.add_argument(
        "--candidate",
        action="append",
        default=[],
        metavar="PROMPT",
        help="a candidate prompt for the diffusion classifier (repeat, two or more): its error difference joins",
    )
    p.add_argument("--dc-samples", type=int, default=20, help="the diffusion classifier's timesteps (default 20)")
    p.set_defaults(func=run)


def parse_xy(text: str) -> tuple[int, int]:
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2 or not all(p.lstrip("-").isdigit() for p in parts):
        raise CliError(f"--xy: expected two whole numbers X,Y, got {text!r}")
    return int(parts[0]), int(parts[1])


def with_classification(record, args: argparse.Namespace):
    """``record`` with the diffusion classifier's error-difference map of its image among the candidates."""
    from dataclasses import replace

    from glimpse.diffusion_classifier import adapter_for, classify
    from glimpse.probe import classification_entry
    from models.diffusion import load_pipeline

    if args.dc_samples < 1:
        raise CliError(f"--dc-samples: at least 1, got {args.dc_samples}")
    bundle = load_pipeline(args.t2i_model or "shapes-t2i", device=args.device)
    with bundle.lock:
        result = classify(adapter_for(bundle.pipe, bundle.model_id), record.image, [p.strip() for p in args.candidate],
                          samples=args.dc_samples, seed=args.seed)  # fmt: skip
    entry = classification_entry(result, record.image_name)
    return replace(
        record, maps=(*record.maps, entry), models={**record.models, "diffusion classifier": bundle.model_id}
    )


def run(args: argparse.Namespace) -> int:
    from glimpse.probe import probe, with_probe

    x, y = parse_xy(args.xy)
    if args.out is not None and args.out.suffix.lower() != ".zip":
        raise CliError(f"--out: a bundle is a .zip file, got {str(args.out)!r}")
    if len(args.candidate) == 1:
        raise CliError("--candidate: give two or more prompts for the diffusion classifier to choose between")
    record = compare_run(args)
    if args.candidate:
        record = with_classification(record, args)
    found = probe(record, x, y)
    if args.out is not None:
        from glimpse.export import write_bundle

        write_bundle(with_probe(record, found), args.out)
    if args.json:
        json.dump({**found.meta(), "image": record.image_name}, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    h, w = found.image_shape
    print(f"pixel ({x}, {y}) of {record.image_name} ({w}×{h})")
    width = max(len(v.name) for v in found.values)
    for v in found.values:
        print(
            f"  {v.name:<{width}}  {v.value:>11.4g}  {v.percentile:5.1f} %  cell {v.cell[0]},{v.cell[1]} of {v.shape[0]}×{v.shape[1]}"
        )
    for word, value, share in found.words:
        print(f"  word {word!r}: attention {value:.4g}, {share:.0%} of the words' here")
    return 0
