"""``python -m glimpse complexity IMAGE...`` and ``python -m glimpse complexity-fit CSV...``.

The first prints the visual-complexity features of Sarıtaş et al. (arXiv:2501.15890) per image (MSG, MUC1..MUC8,
Canny edge density, optional labelled segment-count stand-ins); the second reproduces the paper's cross-validated
OLS models on ratings tables (the shipped CSVs or your own features joined with ratings).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from glimpse.cli import CliError
from glimpse.cli.options import options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "complexity",
        help="visual-complexity features (MSG, MUC1..MUC8, edge density) per image",
        description="One record per image with keys path, MSG, MUC1..MUC8, edge_density "
        "(and standin_* segment counts with --standins). Values equal the paper's reference code.",
        parents=[options(device="cpu", json="a list of records", csv="the records")],
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, WebP, TIFF, GIF, ...)")
    p.add_argument("--no-edges", action="store_true", help="skip the Canny edge density")
    p.add_argument(
        "--standins",
        action="store_true",
        help="add offline segment-count stand-ins (scikit-image; NOT the paper's SAM / FC-CLIP counts)",
    )
    p.add_argument("--batch-size", type=int, default=16, help="same-sized images scored together (default 16)")
    p.set_defaults(func=run_features)

    f = subparsers.add_parser(
        "complexity-fit",
        help="the paper's cross-validated OLS models of complexity ratings (mean test Spearman)",
        description="Mean test Spearman per dataset and formula under the paper's repeated 3-fold protocol. "
        "Each CSV is one dataset (named by its file name) with a 'complexity' rating column and the formula's "
        "columns (the shipped tables' names are renamed as in the paper).",
        parents=[options(json="the records")],
    )
    f.add_argument("tables", nargs="+", metavar="CSV", help="ratings tables")
    f.add_argument(
        "--formula",
        action="append",
        default=None,
        metavar="F",
        help="a headline name (seg+cls, seg+cls+MSG, seg+cls+MUC4+MSG, seg+cls+MUC4+MSG+surprise) or a formula "
        "such as 'complexity ~ MSG + MUC4'; repeatable (default: the four headline formulas)",
    )
    f.add_argument(
        "--repeats",
        type=int,
        default=None,
        metavar="M",
        help="repeats of the 3-fold split "
        "(default: the paper's per dataset: RSIVL/SVG 20, SAVOIAS/VISC 2, IC9600 1, others 1)",
    )
    f.set_defaults(func=run_fit)


def run_features(args: argparse.Namespace) -> int:
    from glimpse.images import load_image

    if args.batch_size < 1:
        raise CliError(f"--batch-size: must be at least 1, got {args.batch_size}")
    # Read everything first: a bad file fails before any scoring.
    pixels = [load_image(path) for path in args.images]
    from glimpse.complexity import STANDINS, complexity_batch

    feats = complexity_batch(
        pixels,
        edges=not args.no_edges,
        standins=tuple(STANDINS) if args.standins else (),
        device=args.device,
        batch_size=args.batch_size,
    )
    records = [{"path": path, **f.record()} for path, f in zip(args.images, feats)]
    if args.json:
        json.dump(records, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    else:
        keys = [k for k in records[0] if k != "path"]
        width = max(len(p) for p in args.images)
        sys.stdout.write(f"{'path':<{width}}  " + "  ".join(f"{k:>10}" for k in keys) + "\n")
        for rec in records:
            cells = "  ".join(f"{rec[k]:>10.4f}" if k in ("MSG", "edge_density") else f"{rec[k]:>10g}" for k in keys)
            sys.stdout.write(f"{rec['path']:<{width}}  {cells}\n")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    from glimpse.complexity.fit import HEADLINE_FORMULAS, cross_validate, default_repeats, prepare, resolve_formula

    if args.repeats is not None and args.repeats < 1:
        raise CliError(f"--repeats: must be at least 1, got {args.repeats}")
    formulas = HEADLINE_FORMULAS if not args.formula else {f: resolve_formula(f) for f in args.formula}
    results = []
    for path in args.tables:
        p = Path(path)
        if not p.is_file():
            raise CliError(f"CSV: no such file {path!r}")
        table = prepare(p, name=p.name)
        repeats = args.repeats or default_repeats(p.stem)
        results.extend(cross_validate(table, formulas, repeats=repeats, dataset=p.stem))
    # the CLI's JSON names the formula's short name "formula_name" (key order kept)
    records = [{("formula_name" if k == "name" else k): v for k, v in r.summary().items()} for r in results]
    if args.json:
        json.dump(records, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    dw = max(len("dataset"), *(len(r["dataset"]) for r in records))
    fw = max(len("formula"), *(len(r["formula_name"]) for r in records))
    sys.stdout.write(f"{'dataset':<{dw}}  {'formula':<{fw}}  {'n':>5}  {'M':>3}  mean Spearman\n")
    for r in records:
        sys.stdout.write(
            f"{r['dataset']:<{dw}}  {r['formula_name']:<{fw}}  {r['n']:>5}  {r['repeats']:>3}  "
            f"{r['mean_spearman']:.4f} ± {r['std_spearman']:.4f}\n"
        )
    return 0
