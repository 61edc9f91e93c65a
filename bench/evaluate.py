"""Benchmark: the BlockDigits leakage table for every method in the registry, on both shipped models, and
optionally one full DiffROAR curve.

    .venv/bin/python -m bench.evaluate [--images 100] [--threads 2] [--json]
    .venv/bin/python -m bench.evaluate --diffroar [--levels K,K] [--seeds 2] [--workers 1,2] [--threads 2]

For ``blockdigits-standard`` and ``blockdigits-robust``: :func:`glimpse.evaluation.leakage.leakage_benchmark`
of every registry method (:data:`~glimpse.evaluation.leakage.BENCHMARK_PARAMS` where a default assumes a
224-px image) on the first ``--images`` test images. Prints the table (signal mass, share of the top-k %
pixels on the null block) and the minutes it took, per model and in all (target: under 2 minutes).

``--diffroar``: the gradient's DiffROAR curve on both models (7 levels × 2 sides × ``--seeds`` retrainings of
10 epochs each, no cache), once per ``--workers`` count, with the minutes of each (target: under 15), and
whether the curves of different worker counts agree.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from glimpse.evaluation.blockdigits import blockdigits
from glimpse.evaluation.leakage import BENCHMARK_PARAMS, leakage_benchmark
from glimpse.saliency import REGISTRY
from models.registry import load_classifier

MODELS = ("blockdigits-standard", "blockdigits-robust")


def diffroar_curves(args) -> None:
    from glimpse.evaluation.diffroar import LEVELS, diffroar, explain_all
    from models.blockdigits import MEAN, STD, BlockDigitsCNN

    levels = tuple(float(k) for k in args.levels.split(",")) if args.levels else LEVELS
    train, test = blockdigits("train", seed=0), blockdigits("test", seed=0)
    (train_x, train_y), (test_x, test_y) = train.tensors(), test.tensors()
    maps = {}
    t0 = time.perf_counter()
    for model_id in MODELS:
        bundle = load_classifier(model_id, device="cpu")
        maps[model_id] = [
            explain_all(bundle, [part.rgb(i) for i in range(len(part))], part.labels, "gradient")
            for part in (train, test)
        ]
    print(f"gradient maps of {len(train) + len(test)} images, both models: {(time.perf_counter() - t0) / 60:.2f} min")
    curves = {}
    for workers in (int(w) for w in args.workers.split(",")):
        t0 = time.perf_counter()
        curves[workers] = [
            diffroar(
                BlockDigitsCNN,
                train_x.numpy(),
                train_y.numpy(),
                test_x.numpy(),
                test_y.numpy(),
                *maps[model_id],
                normalise=lambda x: (x - MEAN) / STD,
                model_id=model_id,
                method="gradient",
                levels=levels,
                seeds=range(args.seeds),
                workers=workers,
            )
            for model_id in MODELS
        ]
        cells = len(MODELS) * len(levels) * 2 * args.seeds
        minutes = (time.perf_counter() - t0) / 60
        print(f"workers {workers}: {cells} retrainings in {minutes:.2f} min (target < 15 for the full curve)")
        for r in curves[workers]:
            print(
                f"  {r.model_id:<22} "
                + " ".join(f"{100 * k:g}%: {v:+.3f}" for k, v in zip(r.levels, r.diffroar.mean(1)))
            )
    first = next(iter(curves.values()))
    for workers, results in curves.items():
        same = all(np.allclose(a.accuracy[s], b.accuracy[s]) for a, b in zip(first, results) for s in a.accuracy)
        print(f"workers {workers}: the same accuracies as the first run: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--diffroar", action="store_true", help="time one full DiffROAR curve instead")
    parser.add_argument("--levels", default=None, help="with --diffroar: fractions kept (default: all 7)")
    parser.add_argument("--seeds", type=int, default=2, help="with --diffroar: retrainings per level and side")
    parser.add_argument("--workers", default="1", help="with --diffroar: worker counts to time, e.g. 1,2")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.diffroar:
        diffroar_curves(args)
        return
    data = blockdigits("test", seed=0)
    methods = [(name, BENCHMARK_PARAMS.get(name, {})) for name in REGISTRY]
    report = {"images": args.images, "threads": args.threads, "models": {}}
    start = time.perf_counter()
    for model_id in MODELS:
        bundle = load_classifier(model_id, device="cpu")
        t0 = time.perf_counter()
        result = leakage_benchmark(bundle, data, methods, images=args.images)
        minutes = (time.perf_counter() - t0) / 60
        report["models"][model_id] = {"accuracy": result.accuracy, "minutes": round(minutes, 2), "rows": result.rows()}
    report["minutes"] = round((time.perf_counter() - start) / 60, 2)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    ks = next(iter(report["models"].values()))["rows"][0]["null_topk"]
    print(f"{'method':<22} " + "  ".join(f"{m:>38}" for m in MODELS))
    print(f"{'':<22} " + "  ".join(f"{'mass':>6} " + " ".join(f"{k + '%':>5}" for k in ks) for _ in MODELS))
    for i, name in enumerate(REGISTRY):
        cells = []
        for model_id in MODELS:
            row = report["models"][model_id]["rows"][i]
            tops = " ".join(f"{100 * v:5.1f}" for v in row["null_topk"].values())
            cells.append(f"{100 * row['signal_mass']:6.1f} {tops}")
        print(f"{name:<22} " + "  ".join(f"{c:>38}" for c in cells))
    for model_id, r in report["models"].items():
        print(f"{model_id}: accuracy {r['accuracy']:.3f} on {args.images} images, {r['minutes']:.2f} min")
    print(f"all: {report['minutes']:.2f} min (target < 2)")


if __name__ == "__main__":
    main()
