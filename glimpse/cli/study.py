"""``python -m glimpse study INPUT --method ... [--masks DIR] [--ray local|ADDRESS] --out OUT [--json]``.

Do maps hold up on complex images? Per image (:class:`glimpse.batch.study.StudyTask`, in this process or on
Ray): its MSG, MUC and edge density, each method's deletion and insertion AUC, the methods' agreement and,
with masks, the pointing game and relevance mass. Then Spearman's ρ of each metric with each complexity feature,
with a bootstrap interval, and the metrics per complexity quantile (:mod:`glimpse.evaluation.study`).

INPUT is a folder, glob, zip or CSV/Parquet of paths, or a built-in set: ``shapes-clutter`` (shapes scenes of
clutter 1–6 with exact masks, on the shapes classifier unless --model says otherwise) or ``photos`` (the six
photographs shipped with Glimpse and 12 crops of each). Writes OUT/study.parquet (one row per image: path, the complexity features,
one column per method and metric), OUT/summary.json and OUT/plots/*.png.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from glimpse.cli import CliError, parse_methods
from glimpse.cli.options import options


def register(subparsers: argparse._SubParsersAction) -> None:
    from glimpse.batch.study import BUILT_IN

    p = subparsers.add_parser(
        "study",
        help="faithfulness and agreement of saliency maps against visual complexity, over a data set",
        description=__doc__.split("\n\n")[1],
        parents=[
            options(
                device="cpu",
                model="classifier",
                method="gradcam,gradient,input_x_gradient",
                method_default="gradcam,gradient,input_x_gradient",
                seed="the methods' random draws and the bootstrap",
                out="study.parquet, summary.json and plots/ (a folder)",
                out_required=True,
                json="the summary",
            )
        ],
    )
    p.add_argument(
        "input", metavar="INPUT", help=f"a folder, glob, zip, CSV/Parquet of paths, or {' or '.join(BUILT_IN)}"
    )
    p.add_argument("--masks", type=Path, default=None, help="a folder of masks named like the images (white inside)")
    p.add_argument("--per-level", type=int, default=20, help="shapes-clutter: scenes per clutter level (default 20)")
    p.add_argument("--steps", type=int, default=20, help="deletion/insertion steps (default 20)")
    p.add_argument(
        "--features", default="MSG,edge_density", help="complexity features to correlate (default MSG,edge_density)"
    )
    p.add_argument("--bins", type=int, default=4, help="complexity quantile bins of the binned plot (default 4)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument(
        "--group-by",
        default=None,
        metavar="REGEX",
        help="resample groups, not images, in the bootstrap: a file's group is REGEX's first match in its name "
        "(photos: a photograph with its crops, '^[^-.]+'; default for other inputs: every image on its own)",
    )
    p.add_argument("--resume", action="store_true", help="add only the images OUT has no row for")
    p.add_argument("--ray", default=None, metavar="ADDRESS", help="run on Ray: 'local', or a cluster address")
    p.add_argument("--workers", type=int, default=1, help="Ray actors holding the model (default 1)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per worker")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from glimpse.batch import list_inputs, read_rows, run_batch
    from glimpse.batch.study import StudyTask, write_clutter, write_photos
    from glimpse.evaluation.study import PHOTO_GROUPS, summarise, summary_record, with_groups, write_plots
    from models.registry import load_classifier

    out: Path = args.out
    pattern = args.group_by if args.group_by is not None else (PHOTO_GROUPS if args.input == "photos" else None)
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as err:
            raise CliError(f"--group-by: {pattern!r} is not a regular expression ({err})") from None
    methods = parse_methods(args.method)
    features = tuple(f.strip() for f in args.features.split(",") if f.strip())
    masks, targets, model = args.masks, None, args.model
    if args.input == "shapes-clutter":
        images, masks, targets = write_clutter(out / "inputs", per_level=args.per_level, seed=args.seed)
        model = model or "shapes-classifier"
        source = str(images)
    elif args.input == "photos":
        source = str(write_photos(out / "inputs" / "images", seed=args.seed))
    else:
        source = args.input
    if masks is not None and not Path(masks).is_dir():
        raise CliError(f"--masks: {masks} is not a folder")
    items = list_inputs(source)
    task = StudyTask(model_id=model or "efficientnet-lite0", methods=methods, out=str(out), loader=load_classifier,
                     device=args.device, seed=args.seed, threads=args.threads, steps=args.steps,
                     masks=None if masks is None else str(masks), targets=targets)  # fmt: skip
    if args.ray is None:
        task.bundle  # noqa: B018  (a model that fails to load is one error line, before any row)
    report = run_batch(task, items, out, resume=args.resume, ray=args.ray, workers=args.workers)
    frame = read_rows(out)
    if pattern is not None:
        frame = with_groups(frame, pattern)
    frame.to_parquet(out / "study.parquet", index=False)
    summary = summarise(frame, methods, features=features, bins=args.bins, resamples=args.resamples, seed=args.seed,
                        groups=None if pattern is None else "group")  # fmt: skip
    meta = summary_record(summary, frame, source=args.input, model_id=task.model_id, engine=report.engine)
    (out / "summary.json").write_text(json.dumps(meta, indent=2) + "\n")
    write_plots(frame, summary, out / "plots", feature=features[0])
    if args.json:
        json.dump(meta, sys.stdout, indent=2)
        print()
        return 0
    print(f"{summary.images} images ({meta['errors']} with an error) on {task.model_id}, {report.engine}")
    print(f"{'feature':<13} {'method':<18} {'metric':<15} {'rho':>6}  95% interval   better")
    for c in summary.correlations:
        print(
            f"{c.feature:<13} {c.method:<18} {c.metric:<15} {c.rho:>6.2f}  [{c.low:5.2f}, {c.high:5.2f}]  {c.row()['better']}"
        )
    print(f"wrote {out}/study.parquet, {out}/summary.json and {out}/plots/")
    return 0
