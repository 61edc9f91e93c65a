"""Benchmark: MSG + MUC1..8 with glimpse.complexity vs the paper's algorithm run once per feature (OpenCV).

The reference is the tests' OpenCV rebuild of ../shared/specs/complexity.md (tests/glimpse/complexity/
cv2_reference.py; OpenCV is a dev requirement), called the way the paper's scripts/algorithms.py is used: one
call for MSG and one call per MUC bit depth, each redoing its resizes. Both sides run on the same images,
single-threaded, in one process; the best of ``--repeat`` runs is reported.

    .venv/bin/python -m bench.complexity [--repeat 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np
import torch

from glimpse.complexity import complexity_batch
from glimpse.images import sample_images
from tests.glimpse.complexity import cv2_reference as reference


def reference_all(rgb: np.ndarray) -> list[float]:
    """The paper's usage: a BGR image (cv2.imread), one call for MSG and one per MUC bit depth, each
    converting to RGB and redoing its resizes."""
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    return [reference.msg(bgr)] + [reference.muc(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), b) for b in range(1, 9)]


def best(fn, repeat: int) -> float:
    fn()  # warm-up (allocations, lazy imports)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    images = sample_images()

    print(f"Single image, MSG + MUC1..8 (best of {args.repeat}; torch {torch.__version__}, OpenCV {cv2.__version__})")
    print(f"{'image':<10} {'size':>9} {'reference':>10} {'glimpse':>9} {'ratio':>6}  equal")
    ratios = []
    for name, img in images.items():
        ours = complexity_batch([img], edges=False, device=args.device)[0]
        ref = reference_all(img)
        equal = abs(ours.msg - ref[0]) <= 1e-4 * max(ref[0], 1e-12) and ours.muc.tolist() == ref[1:]
        t_ref = best(lambda img=img: reference_all(img), args.repeat)
        t_ours = best(lambda img=img: complexity_batch([img], edges=False, device=args.device), args.repeat)
        ratios.append(t_ref / t_ours)
        h, w = img.shape[:2]
        print(f"{name:<10} {w:>4}x{h:<4} {t_ref * 1e3:>8.1f}ms {t_ours * 1e3:>7.1f}ms {t_ref / t_ours:>5.1f}x  {equal}")
    print(f"geometric-mean speed-up: {float(np.exp(np.mean(np.log(ratios)))):.1f}x (target >= 5x)")

    print("\nBatch scaling (256x256 crops, MSG + MUC1..8, one device batch)")
    rng = np.random.default_rng(0)
    pool = [im for im in images.values() if min(im.shape[:2]) >= 256]
    crops = []
    for i in range(16):
        im = pool[i % len(pool)]
        y, x = rng.integers(0, im.shape[0] - 255), rng.integers(0, im.shape[1] - 255)
        crops.append(np.ascontiguousarray(im[y : y + 256, x : x + 256]))
    base = None
    print(f"{'images':>6} {'total':>9} {'per image':>10} {'vs 1':>6}")
    for n in (1, 4, 16):
        t = best(lambda n=n: complexity_batch(crops[:n], edges=False, device=args.device, batch_size=16), args.repeat)
        per = t / n
        base = base or per
        print(f"{n:>6} {t * 1e3:>7.1f}ms {per * 1e3:>8.2f}ms {per / base:>5.2f}")
    t_ref = best(lambda: [reference_all(c) for c in crops[:4]], args.repeat) / 4
    print(f"reference per 256x256 image: {t_ref * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
