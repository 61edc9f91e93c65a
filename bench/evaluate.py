"""Benchmark: the BlockDigits leakage table for every method in the registry, on both shipped models.

    .venv/bin/python -m bench.evaluate [--images 100] [--threads 2] [--json]

For ``blockdigits-standard`` and ``blockdigits-robust``: :func:`glimpse.evaluation.leakage.leakage_benchmark`
of every registry method (:data:`~glimpse.evaluation.leakage.BENCHMARK_PARAMS` where a default assumes a
224-px image) on the first ``--images`` test images. Prints the table (signal mass, share of the top-k %
pixels on the null block) and the minutes it took, per model and in all (target: under 2 minutes).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from glimpse.evaluation.blockdigits import blockdigits
from glimpse.evaluation.leakage import BENCHMARK_PARAMS, leakage_benchmark
from glimpse.saliency import REGISTRY
from models.registry import load_classifier

MODELS = ("blockdigits-standard", "blockdigits-robust")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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
