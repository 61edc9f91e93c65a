"""``python -m glimpse batch complexity|saliency|evaluate INPUT --out OUT [--ray ADDRESS|local] [--resume] ...``.

Whole data sets: one Parquet row per image under ``OUT/rows/`` (and, for saliency, one NPZ of maps per image
under ``OUT/maps/``), in this process or on a Ray cluster (:mod:`glimpse.batch`). A corrupt image is a row with
its error; ``--resume`` computes only the images without a row.
"""

from __future__ import annotations

import argparse
import sys

from glimpse.cli import parse_methods
from glimpse.cli.options import options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "batch",
        help="score or explain a whole data set (folder, glob, zip, CSV/Parquet of paths) into Parquet rows",
        description="One row per image (path, width, height, error, then the task's values) in OUT/rows/*.parquet; "
        "the same columns in-process and with --ray.",
        parents=[
            options(
                device="cpu",
                model="classifier",
                model_default="efficientnet-lite0",
                method="gradient,gradcam",
                method_default="gradient,gradcam",
                seed="the methods' random draws",
                out="the rows/ and maps/ (a folder)",
                out_required=True,
            )
        ],
    )
    p.add_argument(
        "task",
        choices=("complexity", "saliency", "evaluate"),
        help="complexity: MSG, MUC1..8, edges; saliency: map statistics and NPZ maps; evaluate: deletion and "
        "insertion AUC of each method's map",
    )
    p.add_argument("input", metavar="INPUT", help="a folder (recursive), a glob, a .zip, or a .csv/.parquet of paths")
    p.add_argument("--column", default="path", help="the paths' column of a CSV/Parquet INPUT (default: path)")
    p.add_argument("--resume", action="store_true", help="add only the images OUT has no row for")
    p.add_argument("--batch-size", type=int, default=8, help="images per batch (default 8)")
    p.add_argument(
        "--ray", default=None, metavar="ADDRESS", help="run on Ray: 'local', or a cluster address (ray://...)"
    )
    p.add_argument("--workers", type=int, default=1, help="Ray actors holding the model (default 1)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per Ray actor (e.g. 1)")
    p.add_argument("--no-edges", action="store_true", help="complexity: skip the Canny edge density")
    p.add_argument("--steps", type=int, default=20, help="evaluate: deletion/insertion steps (default 20)")
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads per worker (same count: bit-identical maps)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from glimpse.batch import ComplexityTask, EvaluateTask, SaliencyTask, list_inputs, run_batch

    items = list_inputs(args.input, column=args.column)
    if args.task == "complexity":
        task = ComplexityTask(edges=not args.no_edges, device=args.device, threads=args.threads)
    else:
        from models.registry import load_classifier

        methods = parse_methods(args.method)
        kind, extra = (SaliencyTask, {}) if args.task == "saliency" else (EvaluateTask, {"steps": args.steps})
        task = kind(
            **extra,
            model_id=args.model,
            methods=methods,
            out=str(args.out),
            loader=load_classifier,
            device=args.device,
            seed=args.seed,
            threads=args.threads,
        )
        if args.ray is None:
            task.bundle  # noqa: B018  (load now: a model that fails to load is one error line, before any row)
    bar = None
    if args.ray is None:
        from tqdm import tqdm

        bar = tqdm(total=len(items), unit="image", file=sys.stderr, desc=args.task)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        report = run_batch(
            task,
            items,
            str(args.out),
            resume=args.resume,
            batch_size=args.batch_size,
            ray=args.ray,
            workers=args.workers,
            gpus_per_worker=args.gpus_per_worker,
            progress=progress if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
    if report.written == 0 and report.images == report.skipped:
        print(f"{args.out}: every one of the {report.images} images already has a row")
        return 0
    print(
        f"{report.written} rows written to {args.out}/rows ({report.errors} with an error, {report.skipped} already "
        f"there) in {report.seconds:.1f} s, {report.images_per_second:.2f} images/s, {report.engine}"
    )
    return 0
