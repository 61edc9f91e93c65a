"""Benchmark: MSG + MUC1..8 per image with glimpse.complexity against the paper's own code, one thread each.

The reference is the authors' ``scripts/algorithms.py`` (Complexity-Project/Complexity-in-Complexity), used the way
the paper uses it: ``calculate_MSG`` once and ``calculate_multiscale_unique_colors`` once per bit depth, on a BGR
image from ``cv2.imread``. It is not vendored: pass its path with ``--authors`` (a clone of the repository). Without
it, the tests' OpenCV rebuild of ../shared/specs/complexity.md (tests/glimpse/complexity/cv2_reference.py) stands in
and the table says so. Both sides run on the same images in one process; their repeats alternate, and the best of
``--repeat`` is reported. Values are checked: MUC exactly, MSG to 1e-4 relative (float32 rounding).

    .venv/bin/python -m bench.complexity [--authors PATH/scripts/algorithms.py] [--repeat 7] [--device cpu]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np
import torch

from glimpse.complexity import complexity_batch
from glimpse.images import sample_images
from tests.glimpse.complexity import cv2_reference as rebuild


def load_reference(path: str | None):
    """(name, fn(rgb) -> [MSG, MUC1..MUC8]) for the authors' file, or for the tests' OpenCV rebuild."""
    if path is None:

        def rebuilt(rgb: np.ndarray) -> list[float]:
            bgr = np.ascontiguousarray(rgb[..., ::-1])
            return [rebuild.msg(bgr)] + [rebuild.muc(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), b) for b in range(1, 9)]

        return "OpenCV rebuild (tests/)", rebuilt
    spec = importlib.util.spec_from_file_location("authors_algorithms", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def authors(rgb: np.ndarray) -> list[float]:
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # what cv2.imread gives
        return [float(module.calculate_MSG(bgr))] + [
            float(module.calculate_multiscale_unique_colors(bgr, b)["multiscale_score"]) for b in range(1, 9)
        ]

    return f"authors' {Path(path).name}", authors


def alternate(fns, repeat: int) -> list[float]:
    """Best time of each function, their runs interleaved so drift on a shared machine hits both alike."""
    for fn in fns:
        fn()  # warm-up (allocations, lazy imports, lookup tables)
    times = [[] for _ in fns]
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return [min(t) for t in times]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors", help="path to the authors' scripts/algorithms.py")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    ref_name, reference = load_reference(args.authors)
    images = sample_images()
    report: dict = {"reference": ref_name, "device": args.device, "torch": torch.__version__, "images": []}

    print(f"MSG + MUC1..8 per image, one thread (best of {args.repeat}, alternating; OpenCV {cv2.__version__})")
    print(f"reference: {ref_name}")
    print(f"{'image':<10} {'size':>9} {'reference':>10} {'glimpse':>9} {'ratio':>6}  equal")
    ratios = []
    for name, img in images.items():
        ours = complexity_batch([img], edges=False, device=args.device)[0]
        ref = reference(img)
        equal = abs(ours.msg - ref[0]) <= 1e-4 * max(ref[0], 1e-12) and ours.muc.tolist() == ref[1:]
        t_ref, t_ours = alternate(
            [lambda img=img: reference(img), lambda img=img: complexity_batch([img], edges=False, device=args.device)],
            args.repeat,
        )
        ratios.append(t_ref / t_ours)
        h, w = img.shape[:2]
        print(f"{name:<10} {w:>4}x{h:<4} {t_ref * 1e3:>8.1f}ms {t_ours * 1e3:>7.1f}ms {t_ref / t_ours:>5.1f}x  {equal}")
        report["images"].append(
            {"image": name, "size": [w, h], "reference_ms": t_ref * 1e3, "glimpse_ms": t_ours * 1e3, "equal": equal}
        )
    geo = float(np.exp(np.mean(np.log(ratios))))
    print(f"speed-up: geometric mean {geo:.1f}x, lowest {min(ratios):.1f}x (target >= 10x)")
    report.update(geometric_mean=geo, lowest=min(ratios))

    # Per-image cost against the number of images per call: random-sized crops (most sides not divisible by 8,
    # as in real data sets) and 256 x 256 crops (every factor an integer).
    rng = np.random.default_rng(0)
    pool = [im for im in images.values() if min(im.shape[:2]) >= 256]
    crops = {"256x256": [], "random sizes": []}
    for i in range(64):
        im = pool[i % len(pool)]
        for kind in crops:
            ch, cw = (256, 256) if kind == "256x256" else (int(rng.integers(160, 257)), int(rng.integers(160, 257)))
            y, x = rng.integers(0, im.shape[0] - ch + 1), rng.integers(0, im.shape[1] - cw + 1)
            crops[kind].append(np.ascontiguousarray(im[y : y + ch, x : x + cw]))
    report["batch"] = {}
    for kind, items in crops.items():
        print(f"\nPer-image cost against images per call, the same 64 {kind} crops (MSG + MUC1..8)")
        print(f"{'per call':>8} {'total':>9} {'per image':>10} {'vs 1':>6}")
        base = None
        rows = []
        for n in (1, 4, 16, 64):

            def run_all(n=n, items=items):
                for start in range(0, len(items), n):
                    complexity_batch(items[start : start + n], edges=False, device=args.device, batch_size=n)

            (t,) = alternate([run_all], max(3, args.repeat // 2))
            per = t / len(items)
            base = base or per
            print(f"{n:>8} {t * 1e3:>7.1f}ms {per * 1e3:>8.2f}ms {per / base:>5.2f}")
            rows.append({"images_per_call": n, "per_image_ms": per * 1e3, "vs_1": per / base})
        report["batch"][kind] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
