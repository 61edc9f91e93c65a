"""``python -m glimpse probe IMAGE|--prompt TEXT --xy X,Y [--method A,B] [--json] [--out bundle.zip]``.

One pixel through every lens: the Compare run of ``report`` (saliency maps of the classifier, the complexity
maps and, with ``--prompt``, the words' attention), read at pixel (X, Y) of the image by :func:`glimpse.probe.probe`:
each map's value at the cell holding the pixel and its rank percentile in the map, and the words ranked by their
attention there. ``--out`` writes the run's bundle with the probe as its ``probe`` table.
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
    p.set_defaults(func=run)


def parse_xy(text: str) -> tuple[int, int]:
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2 or not all(p.lstrip("-").isdigit() for p in parts):
        raise CliError(f"--xy: expected two whole numbers X,Y, got {text!r}")
    return int(parts[0]), int(parts[1])


def run(args: argparse.Namespace) -> int:
    from glimpse.probe import probe, with_probe

    x, y = parse_xy(args.xy)
    if args.out is not None and args.out.suffix.lower() != ".zip":
        raise CliError(f"--out: a bundle is a .zip file, got {str(args.out)!r}")
    record = compare_run(args)
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
