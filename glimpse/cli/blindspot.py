"""``python -m glimpse blindspot SOURCE TARGET --out DIR``: a level-set traversal (a blind spot of the model).

Walks from SOURCE towards TARGET while the model's confidence in SOURCE's class stays within --pthresh of its
start. Writes, in DIR:

- ``end.png``: the end point at the model's input size, lossless: the image the model was given, so
  ``python -m glimpse classify DIR/end.png`` reproduces ``written_end_confidence``;
- ``frame-NNN.png``: the path's points after NNN steps, the same way;
- ``traversal.npz``: the float points (``end``, ``frames``) and the confidences along the path, with the
  traversal's ``meta`` (:func:`glimpse.lab.blindspot.traversal_npz_bytes`);
- ``end-view.png``: the end point upsampled to the source image's size, a view for people (resizing it back
  is not the image the model saw).

Prints a JSON summary: the start and end confidence in the source class (the float end point, the same
rounded to 8 bits, and ``end.png`` re-read through :mod:`glimpse.images` and the model's preprocessing, with a
note when rounding moves it) and the end point's L2, L-infinity and SSIM distances to the target.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from glimpse.cli import CliError
from glimpse.cli.options import options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "blindspot",
        help="level-set traversal from SOURCE to TARGET at constant confidence in SOURCE's class",
        description="Level-set traversal (Exploring Geometry of Blind Spots in Vision Models, NeurIPS 2023).",
        parents=[
            options(
                device="auto",
                model="classifier",
                seed="the random draws",
                out="the frames and end.png (a folder, created)",
                out_required=True,
            )
        ],
    )
    p.add_argument("source", help="the image whose class is held")
    p.add_argument("target", help="the image walked towards")
    p.add_argument("--steps", type=int, default=400, help="iterations (default 400, as published)")
    p.add_argument("--step-size", type=float, default=1e-2, help="fraction of the projected difference per step")
    p.add_argument("--pthresh", type=float, default=0.2, help="largest allowed drop of the source confidence")
    p.add_argument("--adv-step", type=float, default=2e-3, help="bound of the accumulated correction")
    p.add_argument("--frames", type=int, default=8, help="frames of the path to write (default 8)")
    p.add_argument("--float-only", action="store_true", help="the paper's acceptance rule on the float point "
                   "alone (default: a step is also refused when its 8-bit rounding leaves the level set)")  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from glimpse.images import load_image, png_bytes

    if args.steps < 1:
        raise CliError(f"--steps: must be at least 1, got {args.steps}")
    source, target = load_image(args.source), load_image(args.target)
    from glimpse.lab import level_set_traversal
    from glimpse.lab.blindspot import rounding_note, traversal_npz_bytes
    from glimpse.lab.common import to_tensor, to_uint8, written_probabilities
    from models.lab import model_input
    from models.registry import DEFAULT_CLASSIFIER, load_classifier

    bundle = load_classifier(args.model or DEFAULT_CLASSIFIER, device=args.device)
    inp = model_input(bundle)
    with bundle.lock:
        tr = level_set_traversal(bundle.model, source, target, inp, steps=args.steps, step_size=args.step_size,
                                 pthresh=args.pthresh, adv_step=args.adv_step, check_8bit=not args.float_only,
                                 seed=args.seed, frames=args.frames)  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for step, frame in tr.frames:
        (out / f"frame-{step:03d}.png").write_bytes(png_bytes(frame))
    (out / "end.png").write_bytes(png_bytes(tr.end))
    (out / "traversal.npz").write_bytes(traversal_npz_bytes(tr))
    (out / "end-view.png").write_bytes(png_bytes(to_uint8(to_tensor(tr.end, None, "cpu"), source.shape[:2])))
    with bundle.lock:  # the file as a reader gets it: decoded, then the model's own preprocessing
        written = written_probabilities(str(out / "end.png"), bundle.model, bundle.preprocess, inp)
    top = int(written.argmax())
    summary = {"model": bundle.model_id, "source": args.source, "target": args.target,
               "source_label": bundle.labels[tr.source_class], "target_label": bundle.labels[tr.target_class],
               **tr.summary(), "written_end_confidence": float(written[tr.source_class]),
               "written_end_label": bundle.labels[top], "written_end_top_probability": float(written[top]),
               "note": rounding_note(tr, float(written[tr.source_class])),
               "end": "end.png", "arrays": "traversal.npz",
               "view": "end-view.png (upsampled to the source's size for viewing; not the model's input)",
               "frames": [{"file": f"frame-{s:03d}.png", "step": s, "confidence_8bit": float(tr.confidence_8bit[s]),
                           "confidence": float(tr.confidence[s])} for s in tr.frame_steps]}  # fmt: skip
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
