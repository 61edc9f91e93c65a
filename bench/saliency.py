"""Benchmark: saliency speed on the embedded EfficientNet-Lite0, as ratios measured side by side in one run.

1. One-pass panel (gradient, Input×Gradient, Grad-CAM, HiResCAM, XGrad-CAM, Layer-CAM, Grad-CAM++,
   NormGrad at one layer) through ``explain`` (end to end: preprocessing, pass, eight maps) vs a bare
   forward+backward on the preprocessed tensor, and vs calling Captum once per method (Saliency,
   InputXGradient, LayerGradCam; Captum has no HiResCAM/XGrad-CAM/Layer-CAM/Grad-CAM++/NormGrad, each
   is counted as one more LayerGradCam call, the pass it would need).
2. SmoothGrad (50 samples) and Integrated Gradients (50 steps) through ``explain`` at its default batch
   size vs the batched limit (50 bare forward+backward passes at the best batch size, with and without
   channels-last) and vs Captum (NoiseTunnel(Saliency), IntegratedGradients) at its best
   ``nt_samples_batch_size`` / ``internal_batch_size``.
3. Interactive latency: one gradient map and one Grad-CAM map, end to end.

Timings are medians of ``--repeat`` runs, alternating the contenders so machine load hits all alike.

    .venv/bin/python -m bench.saliency [--repeat 3] [--threads 2] [--device cpu] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from captum.attr import (
    InputXGradient,
    IntegratedGradients,
    LayerGradCam,
    NoiseTunnel,
    Saliency,
)

from glimpse.images import sample_images
from glimpse.saliency import Target, explain, top1
from glimpse.saliency.batching import batch_size_for
from models.registry import load_classifier

PANEL = ["gradient", "input_x_gradient", "gradcam", "hirescam", "xgradcam", "layercam", "gradcampp", "normgrad"]
BATCHES = (1, 5, 10, 16, 25, 50)
N = 50


def _median_alternating(fns: dict, repeat: int) -> dict[str, float]:
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    bundle = load_classifier("efficientnet-lite0", device=args.device)
    model = bundle.model
    img = sample_images()["chelsea"]
    x = bundle.preprocess(img)
    c = top1(bundle, img)
    target = Target(c)
    layer = bundle.target_layers[0]
    lo, hi = bundle.input_range
    sigma = 0.15 * (hi - lo)
    black = torch.full_like(x, lo)
    sync = torch.cuda.synchronize if bundle.device.type == "cuda" else (lambda: None)

    def fwd_bwd(batch: torch.Tensor, channels_last: bool) -> None:
        b = batch.contiguous(memory_format=torch.channels_last) if channels_last else batch
        b = b.detach().requires_grad_(True)
        torch.autograd.grad(model(b)[:, c].sum(), b)
        sync()

    def single() -> None:
        fwd_bwd(x, False)

    def ours_panel() -> None:
        explain(bundle, img, PANEL, target=target, layer=layer)
        sync()

    def captum_panel() -> None:
        Saliency(model).attribute(x, target=c, abs=False)
        InputXGradient(model).attribute(x, target=c)
        for _ in range(len(PANEL) - 2):
            LayerGradCam(model, bundle.module(layer)).attribute(x, target=c, relu_attributions=True)
        sync()

    results: dict = {"device": str(bundle.device), "threads": args.threads, "repeat": args.repeat}
    with bundle.lock:
        t = _median_alternating({"single": single, "ours": ours_panel, "captum": captum_panel}, args.repeat)
    results["panel"] = {
        "single_fwd_bwd_s": t["single"],
        "explain_panel_s": t["ours"],
        "captum_per_method_s": t["captum"],
        "ratio_ours": t["ours"] / t["single"],
        "ratio_captum": t["captum"] / t["single"],
        "methods": len(PANEL),
    }

    # --- batched limit: N forward+backward passes at each batch size ----------------------------------
    noisy = x + sigma * torch.randn((N,) + tuple(x.shape[1:]), generator=torch.Generator().manual_seed(0)).to(x)

    def limit(bs: int, cl: bool):
        def run() -> None:
            for i in range(0, N, bs):
                fwd_bwd(noisy[i : i + bs], cl)

        return run

    with bundle.lock:
        lim = _median_alternating(
            {f"{bs}{'/cl' if cl else ''}": limit(bs, cl) for bs in BATCHES for cl in (False, True)}, args.repeat
        )
    best_key = min(lim, key=lim.get)
    results["batched_limit"] = {"per_batch_s": lim, "best": best_key, "best_s": lim[best_key]}

    # --- SmoothGrad-50 and IG-50: ours vs Captum at every batch setting ----------------------------------
    def ours_sg() -> None:
        explain(bundle, img, [("smoothgrad", {"samples": N, "noise": 0.15})], target=target)
        sync()

    def ours_ig() -> None:  # a fixed budget of N gradient evaluations, as Captum's
        explain(bundle, img, [("integrated_gradients", {"steps": N, "tolerance": 0.0})], target=target)
        sync()

    def captum_sg(bs: int):
        def run() -> None:
            NoiseTunnel(Saliency(model)).attribute(
                x, nt_type="smoothgrad", nt_samples=N, nt_samples_batch_size=bs, stdevs=sigma, target=c, abs=False
            )
            sync()

        return run

    def captum_ig(bs: int):
        def run() -> None:
            IntegratedGradients(model).attribute(x, baselines=black, target=c, n_steps=N, internal_batch_size=bs)
            sync()

        return run

    # the limit's best setting runs again in this group, so every ratio below compares timings taken
    # side by side (load drifts between groups on a shared machine)
    best_bs, best_cl = int(best_key.split("/")[0]), best_key.endswith("/cl")
    with bundle.lock:
        fns = {"limit": limit(best_bs, best_cl), "ours_sg": ours_sg, "ours_ig": ours_ig}
        fns.update({f"captum_sg_{bs}": captum_sg(bs) for bs in BATCHES})
        fns.update({f"captum_ig_{bs}": captum_ig(bs) for bs in BATCHES})
        t2 = _median_alternating(fns, args.repeat)
    for kind in ("sg", "ig"):
        cap = {bs: t2[f"captum_{kind}_{bs}"] for bs in BATCHES}
        best_bs = min(cap, key=cap.get)
        results[kind] = {
            "ours_s": t2[f"ours_{kind}"],
            "ours_batch": batch_size_for(bundle),
            "captum_per_batch_s": cap,
            "captum_best_batch": best_bs,
            "captum_best_s": cap[best_bs],
            "limit_s": t2["limit"],
            "ratio_to_limit": t2[f"ours_{kind}"] / t2["limit"],
            "ratio_to_captum_best": t2[f"ours_{kind}"] / cap[best_bs],
        }

    # --- IG accuracy at the same budget, and the default (refined until the gap is under 1 %) -----------
    with bundle.lock:
        (fixed,) = explain(bundle, img, [("integrated_gradients", {"steps": N, "tolerance": 0.0})], target=target)
        (legendre,) = explain(
            bundle, img, [("integrated_gradients", {"steps": N, "rule": "gausslegendre"})], target=target
        )
        start = time.perf_counter()
        (default,) = explain(bundle, img, ["integrated_gradients"], target=target)
        default_s = time.perf_counter() - start
    results["ig"].update(
        {
            "gap_adaptive_50": fixed.completeness_gap,
            "gap_gausslegendre_50": legendre.completeness_gap,
            "default_gap": default.completeness_gap,
            "default_steps_used": default.steps_used,
            "default_s": default_s,
        }
    )

    # --- interactive latency -----------------------------------------------------------------------
    with bundle.lock:
        t3 = _median_alternating(
            {
                "gradient": lambda: explain(bundle, img, ["gradient"]),
                "gradcam": lambda: explain(bundle, img, ["gradcam"]),
            },
            args.repeat,
        )
    results["interactive_s"] = t3

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    p = results["panel"]
    print(f"device {results['device']}, {args.threads} threads, median of {args.repeat}")
    print(f"{'measurement':<52}{'seconds':>10}{'ratio':>9}")
    print(f"{'single forward+backward':<52}{p['single_fwd_bwd_s']:>10.3f}{1.0:>9.2f}")
    print(f"{'explain(panel of 8), one pass':<52}{p['explain_panel_s']:>10.3f}{p['ratio_ours']:>9.2f}")
    print(f"{'Captum once per method (8 calls)':<52}{p['captum_per_method_s']:>10.3f}{p['ratio_captum']:>9.2f}")
    bl = results["batched_limit"]
    print(f"{'batched limit: 50 fwd+bwd, best batch ' + bl['best'] + ' (sweep)':<52}{bl['best_s']:>10.3f}")
    lim_s = results["sg"]["limit_s"]
    print(f"{'batched limit, again beside the contenders below':<52}{lim_s:>10.3f}{1.0:>9.2f}")
    for kind, label in (("sg", "SmoothGrad-50"), ("ig", "Integrated Gradients-50")):
        r = results[kind]
        print(
            f"{label + ' explain() (batch ' + str(r['ours_batch']) + ')':<52}{r['ours_s']:>10.3f}{r['ratio_to_limit']:>9.2f}"
        )
        cap = r["captum_best_s"] / lim_s
        print(
            f"{label + ' Captum best (batch ' + str(r['captum_best_batch']) + ')':<52}{r['captum_best_s']:>10.3f}{cap:>9.2f}"
        )
    ig = results["ig"]
    print(
        f"IG completeness gap at 50 steps: adaptive {ig['gap_adaptive_50']:.2%}, Gauss-Legendre "
        f"{ig['gap_gausslegendre_50']:.2%}; default (tolerance 1 %): {ig['default_gap']:.2%} after "
        f"{ig['default_steps_used']} steps, {ig['default_s']:.2f} s"
    )
    for name, s in t3.items():
        print(f"{'interactive: one ' + name + ' map, end to end':<52}{s:>10.3f}")
    print(
        f"ratios: panel {p['ratio_ours']:.2f}x single pass (Captum per method {p['ratio_captum']:.2f}x); "
        f"SmoothGrad {results['sg']['ratio_to_limit']:.2f}x limit, {results['sg']['ratio_to_captum_best']:.2f}x Captum best; "
        f"IG {results['ig']['ratio_to_limit']:.2f}x limit, {results['ig']['ratio_to_captum_best']:.2f}x Captum best"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    raise SystemExit(main())
