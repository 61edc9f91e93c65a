"""``python -m glimpse visualize``: feature visualisation of a class or a channel, optionally one per facet.

    python -m glimpse visualize --class 281 --out vis/                      # one picture of class 281
    python -m glimpse visualize --class "tabby" --facets 3 --out vis/       # one per facet (k-means clusters)
    python -m glimpse visualize --channel blocks.12:5 --images photos/ --out vis/   # + top images of the channel

Prints a JSON summary: per image written, the class's probability (or the channel's mean activation) on the
8-bit image the PNG holds, at the size it was optimised at; and, for a class, ``read_back_probability``: the
PNG re-read through :mod:`glimpse.images` and the model's preprocessing, as ``python -m glimpse classify``
gives it. The two agree at the model's input size; with ``--size`` the reader resizes the PNG to the model's
input, and the summary says so.
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
        "visualize",
        help="feature visualisation of a class or channel (multifaceted with --facets)",
        description="Activation maximisation with lucid's Fourier, decorrelated-colour parameterisation and "
        "random jitter, scale and rotation. --facets N clusters real images of the class (--images DIR, or "
        "offline pictures) and starts one visualisation from each cluster's mean image.",
        parents=[
            options(
                device="auto",
                model="classifier",
                seed="the random start and transforms",
                out="the PNGs (a folder, created)",
                out_required=True,
            )
        ],
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--class", dest="class_", metavar="C", help="class index or label (a unique substring)")
    target.add_argument("--channel", metavar="LAYER:K", help="channel K of the layer at module path LAYER")
    p.add_argument("--facets", type=int, default=0, metavar="N", help="one visualisation per facet (class only)")
    p.add_argument("--images", metavar="DIR", help="real images: of the class for --facets; for --channel, "
                   "the folder whose top-activating images and patches are also written")  # fmt: skip
    p.add_argument("--steps", type=int, default=256, help="optimisation steps (default 256)")
    p.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default 0.05)")
    p.add_argument("--size", type=int, default=None, help="optimise at SIZE x SIZE (default: the model's input)")
    p.set_defaults(func=run)


def _folder_images(folder: str) -> tuple[list, list[str]]:
    from glimpse.batch.inputs import list_inputs
    from glimpse.images import load_image

    items = list_inputs(folder)
    if not items:
        raise CliError(f"--images: no images in {folder}")
    images, names = [], []
    for item in items:
        try:
            images.append(load_image(item.read(), name=item.key))
            names.append(item.key)
        except ValueError as err:
            sys.stderr.write(f"skipped {item.key}: {str(err).splitlines()[0]}\n")
    return images, names


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    if args.steps < 1:
        raise CliError(f"--steps: must be at least 1, got {args.steps}")
    if args.facets < 0 or (args.facets and args.channel):
        raise CliError("--facets: a positive number of facets, for --class only")
    from glimpse.lab import Objective, multifaceted, top_examples, visualize
    from models.lab import class_images, late_layer, model_input
    from models.registry import DEFAULT_CLASSIFIER, load_classifier

    bundle = load_classifier(args.model or DEFAULT_CLASSIFIER, device=args.device)
    inp = model_input(bundle)
    inp = inp.resized(args.size)
    if args.class_ is not None:
        objective = Objective("class", bundle.label_index(int(args.class_) if args.class_.isdigit() else args.class_))
    else:
        objective = Objective.parse(f"channel:{args.channel}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"model": bundle.model_id, "objective": objective.describe(), "images": []}
    if objective.kind == "class":
        summary["label"] = bundle.labels[objective.index]

    if objective.kind == "class" and tuple(inp.size) != tuple(bundle.input_size):
        h, w = bundle.input_size
        summary["note"] = (f"optimised and scored at {args.size}x{args.size}; a reader (classify) resizes the PNG "
                           f"to the model's input {w}x{h}, which gives read_back_probability")  # fmt: skip

    def record(name: str, vis) -> None:
        from glimpse.lab.common import written_probabilities

        Image.fromarray(vis.image).save(out / name)
        row = {"file": name, "activation" if vis.probability is None else "probability":
               vis.score if vis.probability is None else vis.probability, "logit_or_activation": vis.score}  # fmt: skip
        if vis.probability is not None:  # the file as a reader gets it (the lock is held by the caller)
            probs = written_probabilities(str(out / name), bundle.model, bundle.preprocess, inp)
            row["read_back_probability"] = float(probs[objective.index])
        summary["images"].append(row)

    with bundle.lock:
        if args.facets:
            if args.images:
                pool, _ = _folder_images(args.images)
                summary["facet_images"] = args.images
            else:
                pool = class_images(bundle, objective.index, count=max(8, 4 * args.facets), seed=args.seed)
                summary["facet_images"] = "offline (models/lab.py: shapes scenes or crops of the shipped samples)"
            result = multifaceted(bundle.model, objective.index, pool, inp, layer=late_layer(bundle),
                                  facets=args.facets, steps=args.steps, lr=args.lr, seed=args.seed)  # fmt: skip
            for k, (vis, members) in enumerate(zip(result.visualizations, result.members)):
                record(f"facet-{k + 1}.png", vis)
                summary["images"][-1]["members"] = len(members)
                Image.fromarray(result.means[k]).save(out / f"facet-{k + 1}-start.png")
            summary["max_pairwise_correlation"] = _max_offdiag(result.correlations())
        else:
            vis = visualize(bundle.model, objective, inp, steps=args.steps, lr=args.lr, seed=args.seed)
            record("visualization.png", vis)
            if objective.kind == "channel" and args.images:
                pool, names = _folder_images(args.images)
                examples = top_examples(bundle.model, objective.layer, objective.index, pool, inp, top=8)
                for rank, ex in enumerate(examples, 1):
                    Image.fromarray(ex.patch).save(out / f"example-{rank}.png")
                summary["examples"] = [{"file": f"example-{r}.png", "image": names[ex.index], "activation": ex.score,
                                        "box": list(ex.box)} for r, ex in enumerate(examples, 1)]  # fmt: skip
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _max_offdiag(matrix) -> float | None:
    import numpy as np

    if matrix.shape[0] < 2:
        return None
    return float(np.max(matrix[~np.eye(matrix.shape[0], dtype=bool)]))
