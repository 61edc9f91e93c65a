"""``python -m glimpse diffusion-classify``: a text-to-image model as a zero-shot classifier.

    python -m glimpse diffusion-classify IMAGE --prompt P --prompt Q ... [--template "a {colour} {shape}"]
        [--negatives] [--model shapes-t2i] [--samples 20 | --samples 10,40 --keep 2,1] [--loss l2|l1|huber]
        [--weighting uniform|logit-normal] [--seed 0] [--device auto] [--json] [--out DIR]

Scores IMAGE against every candidate prompt by the model's denoising error (Li et al., ICCV 2023;
:mod:`glimpse.diffusion_classifier`): the same noise for every prompt at each of ``--samples`` evenly spaced
timesteps, the error in the model's own parameterisation, the lowest mean error wins. ``--samples 10,40
--keep 2,1`` prunes: 10 timesteps for every prompt, then 30 more for the best 2. ``--template`` adds one prompt
per colour and/or shape word; ``--negatives`` adds the hard negatives of the first prompt (colours or shapes
swapped, relation flipped, an object dropped). ``--json`` prints ``prediction`` (the winning prompt), per prompt
its ``mean_error`` and ``probability``, and ``denoiser_calls``; ``--out DIR`` writes ``classification.json``,
``errors.npz`` (every prompt's error per timestep, and the per-pixel error-difference map) and
``difference.png`` (where the winner fits the image better than the runner-up).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from glimpse.cli import CliError
from glimpse.cli.options import options

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "diffusion-classify",
        help="score an image against candidate prompts with a text-to-image model (zero-shot)",
        description="Zero-shot classification by denoising error: which prompt explains IMAGE best?",
        parents=[
            options(
                device="auto",
                model="text-to-image",
                model_default="shapes-t2i",
                seed="the noise draws",
                out="classification.json, errors.npz and difference.png (a folder)",
                json="one object",
            )
        ],
    )
    p.add_argument("image", help="path to an image file")
    p.add_argument("--prompt", "-p", action="append", default=[], help="a candidate prompt (repeat for each)")
    p.add_argument("--template", default=None, help="candidates from a template, e.g. 'a {colour} {shape}'")
    p.add_argument("--negatives", action="store_true", help="add the hard negatives of the first prompt")
    p.add_argument("--samples", default="20", help="timesteps, or per stage cumulatively: 20 or 10,40 (default 20)")
    p.add_argument("--keep", default=None, help="prompts kept after each stage, e.g. 2,1 (default: all)")
    p.add_argument("--loss", choices=("l2", "l1", "huber"), default="l2")
    p.add_argument("--weighting", choices=("uniform", "logit-normal"), default="uniform")
    p.add_argument("--batch-size", type=int, default=32, help="prompts per denoiser call (default 32)")
    p.set_defaults(func=run)


def _ints(text: str | None, what: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as err:
        raise CliError(f"{what}: whole numbers, comma-separated, got {text!r}") from err
    if not values:
        raise CliError(f"{what}: at least one number, got {text!r}")
    return values


def candidates(prompts: list[str], template: str | None, negatives: bool, vocabulary) -> list[str]:
    """The prompts, the template's, and the hard negatives of the first, each once, in that order."""
    from glimpse.diffusion_classifier.negatives import COLOURS, SHAPES, expand_template, hard_negatives

    colours = shapes = None
    if vocabulary is not None:  # a word-level model: only the words it knows
        colours = tuple(w for w in COLOURS if w in vocabulary) or None
        shapes = tuple(w for w in SHAPES if w in vocabulary) or None
    out = [p.strip() for p in prompts]
    if template is not None:
        out += expand_template(template, colours=colours, shapes=shapes)
    if negatives:
        if not out:
            raise CliError("--negatives: give a --prompt to make hard negatives of")
        made = hard_negatives(out[0], colours=colours, shapes=shapes)
        if not made:
            raise CliError(
                f"--negatives: {out[0]!r} is not 'a <colour> <shape> [<relation> a <colour> <shape>]'; "
                "no hard negatives"
            )
        out += [text for _, text in made]
    return list(dict.fromkeys(out))


def run(args: argparse.Namespace) -> int:
    from glimpse.images import load_image

    image = load_image(args.image)
    samples = _ints(args.samples, "--samples")
    keep = _ints(args.keep, "--keep")
    if args.batch_size < 1:
        raise CliError(f"--batch-size: at least 1, got {args.batch_size}")
    from glimpse.diffusion_classifier import adapter_for, classify
    from models.diffusion import load_pipeline

    bundle = load_pipeline(args.model, device=args.device)
    prompts = candidates(args.prompt, args.template, args.negatives, bundle.vocabulary)
    if len(prompts) < 2:
        raise CliError(f"prompts: at least two candidates (--prompt, --template, --negatives), got {len(prompts)}")
    model = adapter_for(bundle.pipe, bundle.model_id)
    if keep is not None and len(keep) != len(samples):
        raise CliError(f"--keep: one count per stage of --samples ({len(samples)}), got {args.keep}")
    with bundle.lock:
        result = classify(
            model,
            image,
            prompts,
            samples=samples if len(samples) > 1 else samples[0],
            keep=keep,
            loss=args.loss,
            weighting=args.weighting,
            seed=args.seed,
            batch_size=args.batch_size,
            progress=lambda f, m: log.info("%3.0f%% %s", 100 * f, m),
        )
    summary = {"image": args.image, "model": bundle.model_id, **result.summary()}
    if args.out is not None:
        write_outputs(args.out, result, summary)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    width = max(len(p) for p in prompts)
    print(f"{'prompt':<{width}}  {'mean error':>10}  {'probability':>11}  timesteps")
    for row in sorted(result.rows(), key=lambda r: (-r["stage_reached"], r["mean_error"])):
        print(f"{row['prompt']:<{width}}  {row['mean_error']:10.5f}  {row['probability']:11.4f}  {row['timesteps']:>9}")
    print(f"prediction: {summary['prediction']}  ({result.denoiser_calls} denoiser calls, {result.seconds:.1f} s)")
    return 0


def write_outputs(out: Path, result, summary: dict) -> None:
    from PIL import Image

    from glimpse import npzfile
    from glimpse.display import DIVERGING, colour_range, resize_map, to_rgb

    out.mkdir(parents=True, exist_ok=True)
    doc = {**summary, "meta": result.meta()}
    (out / "classification.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    diff = result.difference_map()
    arrays = {"errors": result.errors, "timesteps": list(result.timesteps), "difference": diff}
    meta = {"format": "glimpse-diffusion-classifier", "version": 1, **result.meta()}
    (out / "errors.npz").write_bytes(npzfile.write(arrays, meta))
    lo, hi, _ = colour_range(diff, "signed")
    side = max(256, max(diff.shape))  # a 32-px map is enlarged to be seen
    Image.fromarray(to_rgb(resize_map(diff, (side, side), resample="nearest"), lo, hi, DIVERGING)).save(
        out / "difference.png"
    )
