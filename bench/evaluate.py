"""Benchmark: the BlockDigits leakage table for every method in the registry, on both shipped models;
optionally one full DiffROAR curve; optionally deletion curves against Quantus' PixelFlipping.

    .venv/bin/python -m bench.evaluate [--images 100] [--threads 2] [--json]
    .venv/bin/python -m bench.evaluate --diffroar [--levels K,K] [--seeds 2] [--workers 1,2] [--threads 2]
    QUANTUS_PYTHON -m bench.evaluate --quantus [--photos 3] [--digits 64] [--steps 16] [--repeat 3] [--json]

``--quantus`` runs in an interpreter that has Quantus 0.6 beside Glimpse's own requirements (bench/README.md
says how to make one). On the same images and maps, one alternating run, best of ``--repeat``: Glimpse's
deletion curve (:func:`glimpse.evaluation.deletion.deletion_curves`, black fill, ``--steps`` steps) against
``quantus.PixelFlipping`` set to compute the same curve, and the largest difference between the two. Models and
images: the embedded EfficientNet-Lite0 on the first ``--photos`` of :func:`glimpse.images.sample_images`, and
both BlockDigits models on the first ``--digits`` test images; maps: the gradient of the top-1 class.

The shared definition (Bach et al. 2015 pixel flipping = Petsiuk et al. 2018 deletion with a constant fill):
rank the pixels by the map, replace the top ``k/steps`` of them by the fill in model-input space, record the
target's softmax probability, k = 1 … steps. To make Quantus compute exactly that:

- fill: Glimpse's ``"black"`` is pixel value 0 after the model's normalisation, one number for all three
  channels in both embedded models (their mean and std are equal across channels); it is Quantus'
  ``perturb_baseline`` (Quantus' own ``"black"`` is the image's minimum, and ``"mean"`` the mean of the image
  as already perturbed, so neither is Glimpse's);
- whole pixels: Quantus flips features of the flattened input, and asks that ``features_in_step`` divide
  H·W. Its input is therefore the model input in channel-last order as one channel, (N, 1, H, 3·W), so a
  pixel's three values are adjacent features, with the map repeated on them; ``features_in_step`` = 3·H·W /
  steps; the model is wrapped to turn that view back into (N, 3, H, W) before the forward;
- order: Glimpse ranks with a stable sort (ties by pixel index), Quantus with NumPy's default sort; both get
  the map's ranks (distinct values, ties broken by pixel index), on which Glimpse's curve equals its curve on
  the raw map (checked);
- points: Glimpse's curve starts at f = 0 (the clean image); Quantus' first point is after the first step,
  so Quantus' curve is compared with Glimpse's points 1 … steps. Glimpse scores the all-black input (f = 1)
  once for all images, so it scores one input more than Quantus in all.

Values: equal to float32 rounding (the two batch the same inputs differently). Glimpse's other perturbation
metrics have no Quantus 0.6 metric that computes the same thing (bench/README.md says why), so they are not
timed against it.

Also timed: Glimpse one call per image (as the Evaluate page calls it, one map at a time) and one forward per
perturbed image (``batch_size=1``, the per-sample loop that batching replaces).

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
import os
import time
import warnings

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


class ChannelLast(torch.nn.Module):
    """The classifier fed Quantus' (N, 1, H, 3·W) channel-last view of its (N, 3, H, W) input."""

    def __init__(self, model: torch.nn.Module, size: tuple[int, int]) -> None:
        super().__init__()
        self.model, self.size = model, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.size
        return self.model(x.reshape(x.shape[0], h, w, 3).permute(0, 3, 1, 2).contiguous())


def map_ranks(values: np.ndarray) -> np.ndarray:
    """float32 map of descending ranks (H·W … 1): distinct values, ties broken by pixel index as Glimpse's
    stable sort breaks them."""
    v = np.asarray(values, np.float32).ravel()
    out = np.empty(v.size, np.float32)
    out[np.argsort(-v, kind="stable")] = np.arange(v.size, 0, -1)
    return out.reshape(np.shape(values))


def best_of(contenders: dict, repeat: int) -> tuple[dict, dict]:
    """Each contender once untimed (warm-up), then ``repeat`` alternating rounds: best seconds and last result."""
    results = {name: fn() for name, fn in contenders.items()}
    times = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {name: min(t) for name, t in times.items()}, results


def against_quantus(args) -> None:
    try:
        import quantus
    except ImportError:
        raise SystemExit(
            "quantus: not installed in this interpreter; make a venv with quantus==0.6.0 and run this "
            "bench with its python (bench/README.md)"
        ) from None
    from glimpse.evaluation.deletion import deletion_curves, substrate
    from glimpse.images import sample_images
    from glimpse.saliency import explain

    digits = blockdigits("test", seed=0)
    cases = [("efficientnet-lite0", list(sample_images().values())[: args.photos])] + [
        (model_id, [digits.rgb(i) for i in range(args.digits)]) for model_id in MODELS
    ]
    report = {
        "quantus": quantus.__version__,
        "torch": torch.__version__,
        "threads": args.threads,
        "steps": args.steps,
        "repeat": args.repeat,
        "load_average": list(os.getloadavg()),
        "models": {},
    }
    for model_id, images in cases:
        bundle = load_classifier(model_id, device="cpu")
        h, w = bundle.input_size
        if (h * w) % args.steps:
            raise SystemExit(f"steps: {args.steps} does not divide {model_id}'s {h}×{w} pixels")
        maps = [explain(bundle, image, ["gradient"])[0] for image in images]
        targets = [int(m.target.index) for m in maps]
        ranked = [map_ranks(m.values) for m in maps]
        # the rank maps give Glimpse's curves on the raw maps (the same stable order, the same batches)
        on_raw = deletion_curves(bundle, images, [m.values for m in maps], targets=targets, steps=args.steps)
        x = bundle.preprocess_batch(images)
        fill = float(substrate(bundle, x[:1], "black")[0, 0, 0, 0])
        n = len(images)
        x_q = x.permute(0, 2, 3, 1).reshape(n, 1, h, 3 * w).numpy()
        a_q = np.repeat(np.stack(ranked)[..., None], 3, axis=-1).reshape(n, 1, h, 3 * w)
        model_q = ChannelLast(bundle.model, (h, w)).eval()
        metric = quantus.PixelFlipping(
            features_in_step=3 * h * w // args.steps,
            perturb_baseline=fill,
            normalise=False,
            abs=False,
            disable_warnings=True,
        )

        def glimpse(batch_size=None, images=images, ranked=ranked, targets=targets, bundle=bundle):
            return deletion_curves(
                bundle, images, ranked, targets=targets, steps=args.steps, fill="black", batch_size=batch_size
            )

        def per_image(images=images, ranked=ranked, targets=targets, bundle=bundle):
            return np.concatenate(
                [
                    deletion_curves(bundle, [im], [r], targets=[t], steps=args.steps, fill="black")
                    for im, r, t in zip(images, ranked, targets)
                ]
            )

        def pixel_flipping(metric=metric, model_q=model_q, x_q=x_q, a_q=a_q, targets=targets):
            scores = metric(
                model=model_q,
                x_batch=x_q,
                y_batch=np.array(targets),
                a_batch=a_q,
                channel_first=True,
                softmax=True,
                device="cpu",
            )
            return np.asarray(scores, np.float64)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Quantus' notes on its parameters, once per call
            times, out = best_of(
                {
                    "glimpse": glimpse,
                    "quantus": pixel_flipping,
                    "glimpse_per_image": per_image,
                    "per_sample_loop": lambda glimpse=glimpse: glimpse(batch_size=1),
                },
                args.repeat,
            )
        g, q = out["glimpse"], out["quantus"]
        report["models"][model_id] = {
            "images": n,
            "input": [h, w],
            "fill": fill,
            # Glimpse: f = 0 … (steps−1)/steps per image and the all-black input once; Quantus: f = 1/steps … 1
            "inputs_scored": {"glimpse": n * args.steps + 1, "quantus": n * args.steps},
            "seconds": {k: round(v, 4) for k, v in times.items()},
            "quantus_over_glimpse": round(times["quantus"] / times["glimpse"], 3),
            "per_sample_loop_over_glimpse": round(times["per_sample_loop"] / times["glimpse"], 2),
            "per_image_over_glimpse": round(times["glimpse_per_image"] / times["glimpse"], 2),
            "max_abs_diff": float(np.abs(g[:, 1:] - q).max()),
            "max_abs_diff_per_image_calls": float(np.abs(out["glimpse_per_image"] - g).max()),
            "rank_map_equals_raw_map": bool(np.array_equal(on_raw, g)),
        }
    report["load_average_after"] = list(os.getloadavg())
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"deletion / pixel flipping, {args.steps} steps, black fill, torch {report['torch']} ({args.threads} threads), "
        f"Quantus {report['quantus']}, best of {args.repeat}; load average {report['load_average'][0]:.2f}"
    )
    print(
        f"{'model':<22} {'images':>6} {'glimpse':>9} {'quantus':>9} {'ratio':>6} {'per img':>8} {'loop':>8} {'max |Δ|':>9}"
    )
    for model_id, r in report["models"].items():
        sec = r["seconds"]
        print(
            f"{model_id:<22} {r['images']:>6} {sec['glimpse']:>8.3f}s {sec['quantus']:>8.3f}s "
            f"{r['quantus_over_glimpse']:>6.2f} {sec['glimpse_per_image']:>7.3f}s {sec['per_sample_loop']:>7.3f}s "
            f"{r['max_abs_diff']:>9.1e}  rank map = raw map: {r['rank_map_equals_raw_map']}"
        )
    print("ratio = Quantus ÷ Glimpse (target ≥ 1); per img: one Glimpse call per image; loop: one forward per input")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--diffroar", action="store_true", help="time one full DiffROAR curve instead")
    parser.add_argument("--levels", default=None, help="with --diffroar: fractions kept (default: all 7)")
    parser.add_argument("--seeds", type=int, default=2, help="with --diffroar: retrainings per level and side")
    parser.add_argument("--workers", default="1", help="with --diffroar: worker counts to time, e.g. 1,2")
    parser.add_argument("--quantus", action="store_true", help="deletion curves against Quantus' PixelFlipping")
    parser.add_argument("--photos", type=int, default=3, help="with --quantus: sample photos for EfficientNet-Lite0")
    parser.add_argument("--digits", type=int, default=64, help="with --quantus: BlockDigits test images per model")
    parser.add_argument("--steps", type=int, default=16, help="with --quantus: curve steps (must divide H·W)")
    parser.add_argument("--repeat", type=int, default=3, help="with --quantus: timed runs per contender (best)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.diffroar:
        diffroar_curves(args)
        return
    if args.quantus:
        against_quantus(args)
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
