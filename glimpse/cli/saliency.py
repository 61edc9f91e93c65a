"""``python -m glimpse methods`` and ``python -m glimpse saliency``: the saliency registry from the shell.

    python -m glimpse methods [--json]
    python -m glimpse saliency IMAGE --method gradient,gradcam [--model ID] [--target CLASS]
        [--contrast CLASS] [--layer L] [--param METHOD.NAME=VALUE ...] [--out maps.npz]

``saliency`` writes the raw maps in Glimpse's saliency NPZ format (:mod:`glimpse.saliency.npz`: one float32
array per method at the model-input resolution, plus ``meta``, a JSON string with the image's name, digest and
size and each map's method, parameters, noise tunnel, model, target, layer and seed) — the same file the saliency page
downloads and a run bundle holds as ``saliency.npz`` — and prints a JSON summary to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from glimpse.cli import CliError, parse_methods, parse_params
from glimpse.cli.options import options

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "methods", help="list the saliency methods and their parameters", parents=[options(json="the methods")]
    )
    p.set_defaults(func=run_methods)

    s = subparsers.add_parser(
        "saliency",
        help="saliency maps of an image (raw maps to .npz, JSON summary to stdout)",
        description="Compute saliency maps; see `python -m glimpse methods` for names and parameters.",
        parents=[
            options(
                device="auto",
                model="classifier",
                method="required",
                param=True,
                seed="the methods' random draws",
                out="the raw maps (a .npz file)",
            )
        ],
    )
    s.add_argument("image", help="image file (PNG, JPEG, ...)")
    s.add_argument("--target", default=None, help="class name or index (default: the top-1 class)")
    s.add_argument("--contrast", default=None, help="explain target − this class (name or index)")
    s.add_argument("--layer", default=None, help="layer for CAM methods (default: the model's suggestion)")
    s.add_argument(
        "--noise-tunnel",
        default=None,
        metavar="KIND[:SAMPLES[:NOISE]]",
        help="wrap every method: smoothgrad, smoothgrad_sq or vargrad, e.g. smoothgrad:25:0.15",
    )
    s.set_defaults(func=run_saliency)


def _scales(info) -> bool:
    """Whether ``info``'s defaults (listed for a 224-px input) change with the model's input size (occlusion's)."""
    from glimpse.saliency import REGISTRY

    return REGISTRY[info.name].defaults((32, 32)) != dict(info.params)


def _method_dict(info) -> dict:
    from glimpse.saliency import method_units

    return {
        "name": info.name,
        "label": info.label,
        "family": info.family,
        "needs_layer": info.needs_layer,
        "params": info.params,  # the defaults for a 224-px input
        "params_scale_with_input": _scales(info),  # ... and for another input size they scale with it
        "choices": info.choices,
        "slow": info.slow,
        "has_completeness": info.has_completeness,
        "stochastic": info.stochastic,  # some setting draws random numbers: the map depends on --seed
        "models": info.models,  # the model kinds it explains ("any", or "vit")
        "units": method_units(info.name),  # what the map measures, at the default parameters (224 px)
        "assumes_nonnegative_activations": info.assumes_nonnegative_activations,
        "explanation": info.explanation,
        "citation": info.citation,
    }


def run_methods(args: argparse.Namespace) -> int:
    from glimpse.saliency import list_methods

    infos = list_methods()
    if args.json:
        print(json.dumps([_method_dict(i) for i in infos], indent=2, ensure_ascii=False))
        return 0
    width = max(len(i.name) for i in infos)
    for i in infos:
        params = ", ".join(f"{k}={v}" for k, v in i.params.items()) or "-"
        flags = " ".join(
            flag
            for flag, on in (
                ("layer", i.needs_layer),
                ("slow", i.slow),
                ("random", i.stochastic),
                ("scaled", _scales(i)),
            )
            if on
        )
        models = "" if i.models == "any" else f"models: {i.models}"
        print(f"{i.name:<{width}}  {i.family:<12} {params:<48} {' '.join(f for f in (flags, models) if f)}".rstrip())
    print("(defaults for a 224-px input; 'scaled': they scale with the model's input size, e.g. occlusion's window)")
    return 0


def _parse_noise_tunnel(text: str | None) -> dict | None:
    if not text:
        return None
    parts = text.split(":")
    if len(parts) > 3:
        raise CliError(f"--noise-tunnel: expected KIND[:SAMPLES[:NOISE]], got {text!r}")
    nt: dict = {"kind": parts[0]}
    try:
        if len(parts) > 1:
            nt["samples"] = int(parts[1])
        if len(parts) > 2:
            nt["noise"] = float(parts[2])
    except ValueError as err:
        raise CliError(f"--noise-tunnel: samples must be an integer and noise a number, got {text!r}") from err
    return nt


def run_saliency(args: argparse.Namespace) -> int:
    from glimpse.images import load_image
    from glimpse.saliency import explain, make_target
    from models.registry import DEFAULT_CLASSIFIER, load_classifier

    names = parse_methods(args.method)
    params = parse_params(args.param, names)
    nt = _parse_noise_tunnel(args.noise_tunnel)
    if args.out and Path(args.out).suffix.lower() != ".npz":
        raise CliError(f"--out: expected a .npz file name, got {str(args.out)!r}")

    image = load_image(args.image)
    bundle = load_classifier(args.model or DEFAULT_CLASSIFIER, device=args.device)
    target = None
    if args.target is not None or args.contrast is not None:
        target = make_target(bundle, args.target, args.contrast, image=image)

    def progress(fraction: float, message: str) -> None:
        log.info("%3.0f%% %s", 100 * fraction, message)

    maps = explain(
        bundle,
        image,
        [(n, params[n]) for n in names],
        target=target,
        layer=args.layer,
        seed=args.seed,
        noise_tunnel=nt,
        progress=progress,
    )
    h, w = image.shape[:2]
    summary = []
    for m in maps:
        summary.append(
            {
                "method": m.method,
                "target": m.target.index,
                "contrast": m.target.contrast,
                "target_label": m.target_label,
                "layer": m.layer,
                "shape": list(m.values.shape),
                "min": float(m.values.min()),
                "max": float(m.values.max()),
                "completeness_gap": m.completeness_gap,
                "steps_used": m.steps_used,
                "seconds": round(m.seconds, 4),
                "params": dict(m.params),
                "noise_tunnel": None if m.noise_tunnel is None else dict(m.noise_tunnel),
            }
        )
    report = {
        "image": str(args.image),
        "image_size": [h, w],
        "model": bundle.model_id,
        "seed": args.seed,
        "maps": summary,
    }
    if args.out:
        from glimpse.saliency.npz import ImageRef, save_npz

        report["out"] = str(save_npz(args.out, maps, image=ImageRef.of(image, Path(args.image).name)))
    json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
