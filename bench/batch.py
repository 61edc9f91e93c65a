"""Benchmark: a data set in batch, in-process against a local Ray runtime with 1 and 2 workers.

    .venv/bin/python -m bench.batch [--images 300] [--tasks complexity,saliency] [--json]

Writes ``--images`` images (the scikit-image samples, cropped at random to 96–256 px sides, PNG) to a temporary
folder, then runs ``glimpse.batch.run_batch`` on them: in-process (torch on 1 thread, and on 2), and on Ray
(``ray.init(num_cpus=3)`` once, outside the timings) with 1 and 2 actors of 1 thread each. Images per second,
end to end (decoding, the task, Parquet). Ray's first pipeline in a runtime starts worker processes (Python,
torch, the model): that start-up is timed apart, on 16 images, before the measured runs. Target: Ray with 1 worker within 20 % of in-process on 1 thread;
the growth from 1 to 2 workers is printed. Saliency: EfficientNet-Lite0, gradient + Grad-CAM, NPZ per image.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_images(folder: Path, n: int) -> None:
    from glimpse.images import sample_images

    rng = np.random.default_rng(0)
    samples = [a for a in sample_images().values() if min(a.shape[:2]) >= 96]
    for k in range(n):
        a = samples[k % len(samples)]
        h, w = (int(rng.integers(96, min(256, s) + 1)) for s in a.shape[:2])
        y, x = int(rng.integers(0, a.shape[0] - h + 1)), int(rng.integers(0, a.shape[1] - w + 1))
        Image.fromarray(a[y : y + h, x : x + w]).save(folder / f"{k:05d}.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--tasks", default="complexity,saliency")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--json", action="store_true", help="print every number as JSON")
    args = ap.parse_args(argv)

    import ray

    from glimpse.batch import ComplexityTask, SaliencyTask, list_inputs, read_rows, run_batch
    from models.registry import load_classifier

    def task(name: str, out: Path, threads: int):
        if name == "complexity":
            return ComplexityTask(threads=threads)
        return SaliencyTask(
            model_id="efficientnet-lite0",
            methods=("gradient", "gradcam"),
            out=str(out),
            loader=load_classifier,
            threads=threads,
        )

    report: dict = {"images": args.images, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        make_images(root / "in", args.images)
        items = list_inputs(root / "in")
        ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
        try:
            for name in args.tasks.split(","):
                rows = {}
                configs = [("in-process, 1 thread", None, 1, 1), ("in-process, 2 threads", None, 1, 2),
                           ("Ray, 1 worker", "local", 1, 1), ("Ray, 2 workers", "local", 2, 1)]  # fmt: skip
                # Ray's first pipeline starts worker processes that import torch and load the model: seconds,
                # once per runtime; timed here on 16 images and reported apart from the throughput below
                start = time.perf_counter()
                run_batch(
                    task(name, root / f"{name}-warm", 1), items[:16], root / f"{name}-warm", ray="local", workers=2
                )
                report.setdefault("ray_first_run_16_images_s", {})[name] = warm = time.perf_counter() - start
                print(f"{name:<11} {'Ray first run, 16 images':<24} {warm:8.1f} s (worker start-up, once per runtime)")
                reference = None
                for label, address, workers, threads in configs:
                    out = root / f"{name}-{len(rows)}"
                    t = task(name, out, threads)
                    start = time.perf_counter()
                    done = run_batch(t, items, out, batch_size=args.batch_size, ray=address, workers=workers)
                    seconds = time.perf_counter() - start
                    frame = read_rows(out).drop(columns=["maps_npz"], errors="ignore")
                    if reference is None:
                        reference = frame
                    same = frame.shape == reference.shape and bool(
                        np.allclose(frame.select_dtypes("number"), reference.select_dtypes("number"), equal_nan=True)
                    )
                    rows[label] = {"seconds": seconds, "images_per_second": done.written / seconds, "equal": same}
                    print(
                        f"{name:<11} {label:<24} {done.written / seconds:8.2f} images/s  ({seconds:.1f} s, rows equal: {same})"
                    )
                base = rows["in-process, 1 thread"]["images_per_second"]
                one = rows["Ray, 1 worker"]["images_per_second"]
                two = rows["Ray, 2 workers"]["images_per_second"]
                print(
                    f"{name}: Ray with 1 worker at {one / base:.2f}× in-process on 1 thread (target ≥ 0.8); "
                    f"2 workers {two / one:.2f}× 1 worker"
                )
                report[name] = {"rows": rows, "ray1_over_inprocess": one / base, "ray2_over_ray1": two / one}
        finally:
            ray.shutdown()
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
