"""``python -m glimpse attention --prompt TEXT [--model ID] [--seed S] [--steps N] [--guidance G]
[--layers daam|all] [--heads] [--concepts A,B,... | --concept-attention] --out DIR``.

Generates one image with cross-attention tracing and writes ``DIR/image.png`` and ``DIR/attention.npz``, the
page's download format (:func:`glimpse.attention.export.attention_npz_bytes`: ``words``, the prompt's words
in order; ``maps``, one DAAM word map per word at the image's resolution, float32; ``tokens``, ``token_maps``,
``timesteps``, ``mass``, ``image`` and ``meta``, the trace's ``meta()`` as JSON), then prints a JSON summary.
``--layers daam`` (default) records DAAM 0.2.0's layers (Stable Diffusion: down and up blocks, no 8×8
maps); ``--layers all`` adds the UNet mid block and every resolution (:mod:`glimpse.attention.daam`).

``--concepts red,circle`` (or ``--concept-attention``: the prompt's content words) also records ConceptAttention
(SD3 and Flux pipelines; :mod:`glimpse.attention.concept`) and writes ``DIR/concepts.npz`` in the same format,
its ``words`` the concepts and its ``maps`` one map per concept; the summary gains ``concepts`` and
``concept_peaks``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from glimpse.cli import CliError
from glimpse.cli.options import options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "attention",
        help="generate an image and save per-word cross-attention maps (DAAM)",
        description="Generate an image for --prompt and save each word's cross-attention map (DAAM aggregation).",
        parents=[
            options(
                device="auto",
                model="text-to-image",
                seed="the initial noise",
                out="the image, the maps' NPZ and their PNGs (a folder, created if missing)",
                out_required=True,
            )
        ],
    )
    p.add_argument("--prompt", required=True, help="the text prompt (the embedded model knows a small vocabulary)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (default: the model's)")
    p.add_argument(
        "--layers",
        choices=("daam", "all"),  # glimpse.attention.LAYER_SETS, spelled out: building the parser imports no torch
        default="daam",
        help="cross-attention layers to record: daam (default: DAAM's set, no UNet mid block, no 8x8 maps "
        "of a 64x64 latent) or all (every layer, mid block included)",
    )
    p.add_argument(
        "--heads", action="store_true", help="keep every head's map at every step, to select heads afterwards"
    )
    p.add_argument(
        "--concepts",
        default=None,
        help="comma-separated concept words for ConceptAttention (SD3 / Flux only), e.g. red,circle",
    )
    p.add_argument(
        "--concept-attention",
        action="store_true",
        help="record ConceptAttention maps (SD3 / Flux only) of --concepts, by default the prompt's content words",
    )
    p.set_defaults(func=run)


def _npz(trace, image) -> tuple[bytes, object]:
    """The attention NPZ of ``trace`` (every step, layer and head: the page's slice vocabulary) and its word maps."""
    import numpy as np

    from glimpse.attention import token_maps, word_maps, word_mass_over_time
    from glimpse.attention.export import attention_npz_bytes

    maps = word_maps(trace).astype(np.float32)
    npz = attention_npz_bytes(
        trace,
        maps,
        image=image,
        token_maps=token_maps(trace),
        mass=word_mass_over_time(trace),
        # the page's slice vocabulary (components.attention.controls.Slice.meta): every step, layer and head
        slices={
            "timesteps": [0, len(trace.timesteps)],
            "layers": "all",
            "resolutions": list(trace.resolutions()),
            "heads": "all",
            "size": int(image.shape[0]),
        },
    )
    return npz, maps


def _peaks(words, maps) -> list[dict]:
    import numpy as np

    return [
        {"word": w, "row_col": [int(v) for v in np.unravel_index(int(np.argmax(m)), m.shape)], "max": float(m.max())}
        for w, m in zip(words, maps)
    ]


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from glimpse.attention import generate_with_attention, generate_with_concepts
    from models.diffusion import EMBEDDED_T2I, load_pipeline

    if args.steps is not None and args.steps < 1:
        raise CliError(f"--steps: must be at least 1, got {args.steps}")
    concepts = args.concept_attention or args.concepts is not None
    if args.concepts is not None and not args.concepts.strip(" ,"):
        raise CliError("--concepts: empty; name them comma-separated (red,circle) or use --concept-attention")
    # the prompt is validated by generate_with_attention, whose error states the text encoder's limit
    bundle = load_pipeline(args.model or EMBEDDED_T2I, device=args.device)
    start = time.perf_counter()
    options = dict(seed=args.seed, steps=args.steps, guidance=args.guidance, heads=args.heads, layers=args.layers)
    if concepts:  # a kind without joint attention: ValueError naming the reason
        result = generate_with_concepts(bundle, args.prompt, args.concepts, **options)
    else:
        result = generate_with_attention(bundle, args.prompt, **options)
    seconds = time.perf_counter() - start
    trace = result.trace
    args.out.mkdir(parents=True, exist_ok=True)
    image_path, npz_path = args.out / "image.png", args.out / "attention.npz"
    Image.fromarray(result.image).save(image_path)
    npz, maps = _npz(trace, result.image)
    npz_path.write_bytes(npz)
    summary = {
        "prompt": trace.prompt,
        "model": trace.model_id,
        "seed": trace.seed,
        "steps": trace.steps,
        "guidance": trace.guidance,
        "image": str(image_path),
        "attention": str(npz_path),
        "image_shape": list(result.image.shape),
        "words": list(trace.words),
        "layer_set": trace.layer_set,
        "layers": len(trace.layers),
        "resolutions": list(trace.resolutions()),
        "grid": trace.grid,
        "trace_bytes": trace.nbytes,
        "seconds": round(seconds, 3),
        "word_peaks": _peaks(trace.words, maps),
    }
    if concepts:
        concept_npz, concept_maps = _npz(result.concepts, result.image)
        (args.out / "concepts.npz").write_bytes(concept_npz)
        summary.update(
            concepts=list(result.concepts.words),
            concept_file=str(args.out / "concepts.npz"),
            concept_layers=list(result.concepts.layers),
            concept_peaks=_peaks(result.concepts.words, concept_maps),
        )
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
