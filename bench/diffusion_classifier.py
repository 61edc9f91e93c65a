"""Benchmark: the diffusion classifier on the embedded model: batching, pruning, and the compositional table.

    .venv/bin/python -m bench.diffusion_classifier [--items 16] [--seeds 0,1] [--threads 2] [--json FILE]
        [--model shapes-mmdit] [--no-pruning]

1. Batching: one image, 12 candidate prompts, 20 timesteps. ``classify`` (every prompt of a timestep in one
   denoiser call) against the bare batched calls it makes (the same inputs, nothing else; target ≤ 1.2×), and
   against one call per prompt and timestep (what batching saves). Images per second.
2. The compositional benchmark (:func:`glimpse.evaluation.compositional.run_benchmark`): accuracy per task and image
   source for the diffusion classifier (full: 30 timesteps; pruned: 1 timestep for every candidate, then 29
   more for the best 2), the shapes classifier and chance, mean ± sd over ``--seeds``. ``--model`` picks the
   embedded text-to-image model that classifies and generates (``shapes-t2i``, the UNet, or ``shapes-mmdit``).
   On the 12-way object task and over all tasks: the pruned classifier's accuracy against the full one's.
3. Pruning at the schedule of ``--pruning-samples`` / ``--pruning-keep`` (default 2,10,100 / 4,2,1: 2
   timesteps for each of the 12 candidates, 8 more for the best 4, 90 more for the best 2; the reference
   code's stage lists have the same shape) against all 100 timesteps for every candidate, on the 12-way
   object task (drawn and generated images, ``--items`` × ``--seeds``): accuracy (target: within 1 point) and
   the ratio of denoiser evaluations (target ≥ 5×). ``--no-table`` skips part 2, ``--no-pruning`` part 3.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch


def _best(fn, repeats: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def batching() -> dict:
    from glimpse.diffusion_classifier import adapter_for, classify, timestep_grid
    from glimpse.evaluation.shapes_scenes import render_scene, single_object_specs
    from models.diffusion import load_pipeline

    bundle = load_pipeline("shapes-t2i", device="cpu")
    model = adapter_for(bundle.pipe, bundle.model_id)
    prompts = [s.text for s in single_object_specs()]
    image = render_scene(single_object_specs()[0], np.random.default_rng(0)).image
    grid = timestep_grid(20)
    with torch.no_grad():
        x0 = model.encode_image(image)
        cond = model.encode_prompts(prompts)
        noise = torch.randn((len(grid), *x0.shape[1:]), generator=torch.Generator().manual_seed(0))

    def bare_batched() -> None:
        with torch.no_grad():
            for i, t in enumerate(grid):
                x_t, _ = model.noised(x0, noise[i : i + 1], t)
                model.predict(x_t.expand(len(prompts), *x_t.shape[1:]), t, cond)

    def one_by_one() -> None:
        with torch.no_grad():
            for i, t in enumerate(grid):
                x_t, _ = model.noised(x0, noise[i : i + 1], t)
                for p in range(len(prompts)):
                    model.predict(x_t, t, cond[p : p + 1])

    ours = _best(lambda: classify(model, image, prompts, samples=len(grid)))
    bare = _best(bare_batched)
    single = _best(one_by_one, repeats=2)
    return {
        "prompts": len(prompts),
        "timesteps": len(grid),
        "classify_s": ours,
        "bare_batched_calls_s": bare,
        "one_call_per_prompt_s": single,
        "overhead_ratio": ours / bare,
        "batching_speedup": single / ours,
        "images_per_second": 1 / ours,
    }


def shapes_models(model: str = "shapes-t2i") -> tuple:
    """An embedded text-to-image model and the shapes classifier, on the CPU: what the benchmark scores with."""
    from models.diffusion import load_pipeline
    from models.registry import load_classifier

    return load_pipeline(model, device="cpu"), load_classifier("shapes-classifier", device="cpu")


def table_part(report: dict, args, seeds: tuple[int, ...], progress) -> None:
    from glimpse.evaluation.compositional import TASKS, run_benchmark, summary

    start = time.perf_counter()
    rows = run_benchmark(*shapes_models(args.model), TASKS, items=args.items, seeds=seeds, progress=progress)
    report["minutes"] = (time.perf_counter() - start) / 60
    report["rows"] = rows
    report["summary"] = table = summary(rows)
    scorers = ("diffusion", "diffusion (pruned)", "shapes classifier", "chance")
    print(f"\n{'task':<10} {'images':<10} " + " ".join(f"{s:>20}" for s in scorers))
    for task in TASKS:
        for source in ("drawn", "generated"):
            cells = []
            for scorer in scorers:
                r = next(r for r in table if (r["task"], r["source"], r["scorer"]) == (task, source, scorer))
                cells.append(f"{r['accuracy']:.2f} ± {r['accuracy_sd']:.2f}")
            print(f"{task:<10} {source:<10} " + " ".join(f"{c:>20}" for c in cells))
    full = np.mean([r["accuracy"] for r in table if r["scorer"] == "diffusion"])
    pruned = np.mean([r["accuracy"] for r in table if r["scorer"] == "diffusion (pruned)"])
    report["table_pruning"] = {"all_tasks_full": full, "all_tasks_pruned": pruned}
    print(
        f"all tasks: {pruned:.3f} pruned vs {full:.3f} full; table: {report['minutes']:.1f} min on {args.threads} threads"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=12, help="items per task, source and seed")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write every number to this file")
    parser.add_argument("--no-table", action="store_true", help="skip the compositional table")
    parser.add_argument("--no-pruning", action="store_true", help="skip the pruning comparison")
    parser.add_argument(
        "--model", default="shapes-t2i", help="the embedded text-to-image model: shapes-t2i, shapes-mmdit"
    )
    parser.add_argument(
        "--pruning-samples", default="2,10,100", help="cumulative timesteps at the end of each pruning stage"
    )
    parser.add_argument("--pruning-keep", default="4,2,1", help="prompts kept after each pruning stage")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from glimpse.evaluation.compositional import run_benchmark

    report = {"model": args.model, "threads": args.threads, "batching": batching()}
    b = report["batching"]
    print(
        f"batching, {b['prompts']} prompts × {b['timesteps']} timesteps: classify {b['classify_s']:.3f} s, "
        f"the bare batched calls {b['bare_batched_calls_s']:.3f} s → {b['overhead_ratio']:.2f}× (target ≤ 1.2); "
        f"one call per prompt {b['one_call_per_prompt_s']:.3f} s ({b['batching_speedup']:.1f}× slower); "
        f"{b['images_per_second']:.2f} images/s"
    )
    seeds = tuple(int(s) for s in args.seeds.split(","))
    progress = lambda f, m: print(f"  {100 * f:3.0f}% {m}", file=sys.stderr)  # noqa: E731
    if not args.no_table:
        table_part(report, args, seeds, progress)
    if args.no_pruning:
        _write(report, args.json)
        return
    samples = tuple(int(v) for v in args.pruning_samples.split(","))
    keep = tuple(int(v) for v in args.pruning_keep.split(","))
    if len(samples) != len(keep) or len(samples) < 2:
        parser.error("--pruning-samples and --pruning-keep need the same number (≥ 2) of stages")
    total = samples[-1]
    start = time.perf_counter()
    rows = run_benchmark(
        *shapes_models(args.model),
        ("object",),
        items=args.items,
        seeds=seeds,
        full={"samples": total},
        pruned={"samples": samples, "keep": keep},
        progress=progress,
    )
    by = {name: [r for r in rows if r["scorer"] == name] for name in ("diffusion", "diffusion (pruned)")}
    acc = {name: float(np.mean([r["accuracy"] for r in group])) for name, group in by.items()}
    spent = {name: float(np.mean([r["evaluations_per_image"] for r in group])) for name, group in by.items()}
    report["pruning"] = {
        "schedule": {"samples": samples, "keep": keep},
        "accuracy_full": acc["diffusion"],
        "accuracy_pruned": acc["diffusion (pruned)"],
        "evaluation_ratio": spent["diffusion"] / spent["diffusion (pruned)"],
        "rows": rows,
        "minutes": (time.perf_counter() - start) / 60,
    }
    p = report["pruning"]
    stages = ", ".join(
        f"{n - (samples[i - 1] if i else 0)} timesteps for " + (f"the best {keep[i - 1]}" if i else "all 12")
        for i, n in enumerate(samples)
    )
    print(
        f"\npruning ({stages}; 12-way object task, "
        f"drawn and generated, {len(seeds)} seeds × {args.items} items each): accuracy {p['accuracy_pruned']:.3f} pruned "
        f"vs {p['accuracy_full']:.3f} with all {total} timesteps (target: within 0.01), {p['evaluation_ratio']:.2f}× "
        f"fewer denoiser evaluations (target ≥ 5); {p['minutes']:.1f} min"
    )
    _write(report, args.json)


def _write(report: dict, path: str | None) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, default=float)


if __name__ == "__main__":
    main()
