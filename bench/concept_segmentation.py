"""Zero-shot segmentation of the shapes by ConceptAttention against cross-attention, on the embedded MMDiT.

Helbling et al. (ICML 2025) report that ConceptAttention's output-space maps segment objects better than the
raw cross-attention of the same diffusion transformer. This measures it on ``shapes-mmdit`` (an SD3 MMDiT of
the shapes task, ``models/embedded/shapes_mmdit``), where the objects' pixels are known:

* every held-out two-object caption (``glimpse.evaluation.shapes_scenes.HELD_OUT_CAPTIONS``, scenes never seen in
  training) is generated for each seed by :func:`glimpse.attention.generate_with_attention` with ConceptAttention's
  streams installed (:class:`glimpse.attention.concept.ConceptRecording`), so every map comes from the one
  generation and the image is the one generated without concepts. Two concept sets: the caption's content words
  (its colour and shape words, each once: ``default_concepts``, what the page and the CLI take by default), and
  its colour words apart from its shape words (two sets, so an object's colour and shape do not compete for its
  pixels in the softmax; a set of one concept, two objects of one shape, is left out);
* each requested object's pixels are found in the generated image by the colour segmentation of
  ``training/shapes_t2i/evaluate.py`` (flat palette colours on white: a drawn object's pixels are exact); an
  object whose colour was not drawn is skipped;
* for the object's colour word and shape word, the cross-attention word map (``word_maps`` of the trace) and the
  concept's map (``word_maps`` of the concept trace, same options: every step and layer, at 32×32) are min-max
  normalised and thresholded at 0.4 (DAAM's tau, :func:`glimpse.map_metrics.binarise`, inclusive), and scored
  by IoU with the object's pixels (``iou_own``) and with the other object's (``iou_other``);
  mIoU is the mean over (image, object, word);
* and, as the paper segments given images, rendered scenes of the same captions with their exact masks
  (``render_scene``): each noised with one draw to every ``--sigmas`` level (flow matching,
  x_σ = (1 − σ) x₀ + σ ε), one denoiser call per level without guidance, the maps summed over the calls and
  scored against the exact masks in the same way.

Beside them, the paper's "raw output space" baseline: the same output-space softmax read with the prompt's own
colour and shape tokens instead of concept tokens (:class:`PromptOutputSpace`): it tells whether the output space
of the model localises at all, apart from the concept stream.

Usage::

    .venv/bin/python -m bench.concept_segmentation [--model models/embedded/shapes_mmdit] [--seeds 0 1]
        [--steps 25] [--sigmas 0.3 0.5 0.7] [--out docs/results/concept_segmentation.json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch

from glimpse import map_metrics
from glimpse.attention import generate_with_attention, word_maps
from glimpse.evaluation.shapes_scenes import HELD_OUT_CAPTIONS, IMAGE_SIZE, parse_caption, word_token_positions

THRESHOLD = 0.4  # DAAM's tau on the min-max normalised map, as training/shapes_t2i/evaluate.py scores word maps
#: the maps compared: the words' cross-attention, and ConceptAttention with two choices of concepts
METHODS = ("cross_attention", "concept_attention", "concept_attention_split", "prompt_output_space")


def _mask(values: np.ndarray) -> np.ndarray:
    return map_metrics.binarise(values, THRESHOLD, inclusive=True)


def _recordings(bundle: Any, caption: str, guidance: float | None) -> dict[str, Any]:
    """ConceptAttention's concept sets of ``caption``, all recorded in the same run: ``content`` (its colour and
    shape words together, the default concepts) and, for ``concept_attention_split``, its colour words apart from
    its shape words (an object's colour and shape do not compete for its pixels; a set of one concept, two objects
    of one shape, is left out)."""
    from glimpse.attention.concept import ConceptRecording

    spec = parse_caption(caption)
    sets = {
        "content": None,
        "colour": list(dict.fromkeys(o.colour for o in spec.objects)),
        "shape": list(dict.fromkeys(o.shape for o in spec.objects)),
    }
    recordings: dict[str, Any] = {
        name: ConceptRecording(bundle, caption, concepts, guidance=guidance)
        for name, concepts in sets.items()
        if concepts is None or len(concepts) > 1
    }
    guidance = bundle.default_guidance if guidance is None else guidance
    recordings["prompt"] = PromptOutputSpace(bundle, caption, cfg=guidance > 1.0)
    return recordings


class PromptOutputSpace:
    """The paper's "raw output space" baseline: the prompt's own colour and shape tokens in place of concepts,
    softmax over them of o_t · o_x (o_t the text tokens' attention output, before ``to_add_out``), per joint block
    that has a text output projection (SD3's last block has none) and call; used like a ``ConceptRecording``."""

    def __init__(self, bundle: Any, caption: str, *, cfg: bool) -> None:
        spec = parse_caption(caption)
        self.positions = [p[kind] for p in word_token_positions(spec) for kind in ("colour", "shape")]
        self.blocks = [b for b in bundle.denoiser.transformer_blocks if b.attn.to_add_out is not None]
        self.cfg, self._maps = cfg, [[] for _ in self.blocks]

    def wrap(self, denoise: Any) -> Any:
        handles, seen = [], {}

        def keep(key: tuple) -> Any:
            def hook(module: torch.nn.Module, args: tuple) -> None:
                seen.setdefault(key, args[0])  # the processor's call (a concept stream calls to_add_out later)

            return hook

        for i, block in enumerate(self.blocks):
            handles.append(block.register_forward_pre_hook((lambda k: lambda m, a: seen.clear())(i)))
            for name, module in (("o", block.attn.to_out[0]), ("t", block.attn.to_add_out)):
                handles.append(module.register_forward_pre_hook(keep((name, i))))
            handles.append(block.register_forward_hook((lambda k: lambda m, a, o: self._read(seen, k))(i)))
        try:
            return denoise()
        finally:
            for handle in handles:
                handle.remove()

    def _read(self, seen: dict, i: int) -> None:
        o_x, o_t = seen.pop(("o", i)), seen.pop(("t", i))
        b = o_x.shape[0] // 2 if self.cfg else 0
        self._maps[i].append(torch.softmax(o_t[b, self.positions].float() @ o_x[b].float().T, dim=0).half())

    def trace(self, cross: Any) -> Any:
        from dataclasses import replace

        side = int(np.sqrt(self._maps[0][0].shape[-1]))
        maps = tuple(torch.stack(m).reshape(len(m), len(self.positions), side, side).numpy() for m in self._maps)
        labels = tuple(f"token {p}" for p in self.positions)
        return replace(
            cross, tokens=labels, words=labels, word_tokens=tuple((k,) for k in range(len(labels))),
            layers=tuple(f"block {k}" for k in range(len(maps))), layer_maps=maps, head_sums=None, heads=False,
        )  # fmt: skip


def _wrapped(recordings: dict[str, Any], denoise: Any) -> Any:
    """``denoise`` with every recording's concept stream installed (each reads the blocks on its own)."""
    run = denoise
    for recording in recordings.values():
        run = (lambda rec, inner: lambda: rec.wrap(inner))(recording, run)
    return run


def score_caption(bundle: Any, caption: str, *, seed: int, steps: int, guidance: float | None) -> dict:
    """One generation of ``caption``: per drawn object and word (colour, shape), every method's IoU with the
    object's pixels (segmented from the generated image) and with the other object's."""
    from training.shapes_t2i.evaluate import judge_image

    spec = parse_caption(caption)
    recordings = _recordings(bundle, caption, guidance)
    result = generate_with_attention(
        bundle, caption, seed=seed, steps=steps, guidance=guidance, wrap=lambda d: _wrapped(recordings, d)()
    )
    verdict = judge_image(result.image.astype(np.float32) / 255.0, spec)
    masks = [m if ok else None for m, ok in zip(verdict["colour_masks"], verdict["colour_ok"])]
    return score_maps(caption, seed, result.trace, {k: r.trace(result.trace) for k, r in recordings.items()}, masks)


def score_scene(bundle: Any, caption: str, *, seed: int, sigmas: tuple[float, ...]) -> dict:
    """A rendered scene of ``caption`` (exact masks) noised to each of ``sigmas`` with one noise draw,
    x_σ = (1 − σ) x₀ + σ ε, one denoiser call each (t = 1000 σ, no guidance), the maps summed over the calls."""
    from glimpse.attention.generate import Denoised, prompt_tokens, trace_denoiser
    from glimpse.evaluation.shapes_scenes import render_scene

    spec = parse_caption(caption)
    scene = render_scene(spec, np.random.default_rng(seed))
    pipe = bundle.pipe
    recordings = _recordings(bundle, caption, 0.0)

    def denoise() -> Denoised:
        with torch.no_grad():
            x0 = torch.from_numpy(scene.image).permute(2, 0, 1)[None].float() / 127.5 - 1.0
            x0 = x0.to(bundle.denoiser.device, bundle.denoiser.dtype)
            cond = pipe.conditioning([caption])
            noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).to(x0)
            for sigma in sigmas:
                pipe.predict(pipe.scheduler, (1 - sigma) * x0 + sigma * noise, torch.tensor(1000.0 * sigma), cond)
        return Denoised([round(1000 * s) for s in sigmas], (IMAGE_SIZE, IMAGE_SIZE))

    tokens = prompt_tokens(bundle, caption)
    trace, _ = trace_denoiser(
        bundle, tokens, _wrapped(recordings, denoise), prompt=caption, seed=seed, guidance=0.0, side=IMAGE_SIZE
    )
    return score_maps(caption, seed, trace, {k: r.trace(trace) for k, r in recordings.items()}, list(scene.masks))


def score_maps(caption: str, seed: int, cross_trace: Any, concept_traces: dict[str, Any], masks: list) -> dict:
    """Per object with a mask (None: not drawn, skipped) and word (colour, shape): the word's cross-attention map
    and its concept's maps, binarised, against the object's mask (``iou_own``) and the other one's
    (``iou_other``). ``concept_traces``: ``content`` and, where recorded, ``colour`` and ``shape`` (see
    :func:`_recordings`)."""
    spec = parse_caption(caption)
    cross = word_maps(cross_trace, size=IMAGE_SIZE)
    concept = {name: (t.words, word_maps(t, size=IMAGE_SIZE)) for name, t in concept_traces.items()}
    rows = []
    for i, positions in enumerate(word_token_positions(spec)):  # token k is word k - 1 ([CLS] first)
        own, other = masks[i], masks[1 - i]
        if own is None:
            continue
        for kind in ("colour", "shape"):
            word = getattr(spec.objects[i], kind)
            maps = {"cross_attention": cross[positions[kind] - 1]}
            for method, name in (("concept_attention", "content"), ("concept_attention_split", kind)):
                if name in concept:
                    words, values = concept[name]
                    maps[method] = values[words.index(word)]
            if "prompt" in concept:  # the prompt's own tokens: object i's colour, then its shape
                maps["prompt_output_space"] = concept["prompt"][1][2 * i + (kind == "shape")]
            row: dict[str, Any] = {"object": i, "word": kind, "text": word}
            for method, values in maps.items():
                mask = _mask(values)
                row[method] = {
                    "iou_own": map_metrics.iou(mask, own),
                    "iou_other": None if other is None else map_metrics.iou(mask, other),
                }
            rows.append(row)
    return {"caption": caption, "seed": seed, "concepts": list(concept["content"][0]), "rows": rows}


def summarise(records: list[dict]) -> dict:
    """Per method: mIoU with the own object (overall, colour words, shape words) and with the other object."""
    every = [row for r in records for row in r["rows"]]
    out: dict[str, Any] = {"images": len(records), "scored": len(every)}
    for method in METHODS:
        rows = [row for row in every if method in row]
        own = [row[method]["iou_own"] for row in rows]
        other = [row[method]["iou_other"] for row in rows if row[method]["iou_other"] is not None]
        out[method] = {
            "pairs": len(rows),
            "miou_own": float(np.mean(own)) if own else None,
            "sd_own": float(np.std(own)) if own else None,
            "miou_own_colour": _mean([row[method]["iou_own"] for row in rows if row["word"] == "colour"]),
            "miou_own_shape": _mean([row[method]["iou_own"] for row in rows if row["word"] == "shape"]),
            "miou_other": _mean(other),
        }
    return out


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def evaluate(
    bundle: Any,
    captions: list[str],
    *,
    seeds: list[int],
    steps: int,
    guidance: float | None,
    sigmas: tuple[float, ...] = (),
) -> dict:
    """Generated images of every caption and seed; with ``sigmas``, rendered scenes too (``"scenes"``)."""
    records = [
        score_caption(bundle, caption, seed=seed, steps=steps, guidance=guidance)
        for seed in seeds
        for caption in captions
    ]
    out = {"generated": {"summary": summarise(records), "records": records}}
    if sigmas:
        scenes = [score_scene(bundle, c, seed=seed, sigmas=sigmas) for seed in seeds for c in captions]
        out["scenes"] = {"summary": summarise(scenes), "records": scenes}
    return out


def table(summary: dict) -> str:
    """The summary as a Markdown table."""
    lines = [
        "| maps | pairs | mIoU, own object | colour words | shape words | IoU, other object |",
        "|---|---|---|---|---|---|",
    ]
    names = {
        "cross_attention": "cross-attention (DAAM aggregation)",
        "concept_attention": "ConceptAttention, the caption's content words",
        "concept_attention_split": "ConceptAttention, colour words apart from shape words",
        "prompt_output_space": "output space of the prompt's own tokens (no concepts)",
    }
    for method in METHODS:
        s = {k: "–" if v is None else f"{v:.3f}" for k, v in summary[method].items()}
        lines.append(
            f"| {names[method]} | {summary[method]['pairs']} | {s['miou_own']} ± {s['sd_own']} | {s['miou_own_colour']} | "
            f"{s['miou_own_shape']} | {s['miou_other']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from models.diffusion import load_pipeline

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/embedded/shapes_mmdit")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=None, help="CFG scale (default: the model's)")
    parser.add_argument(
        "--sigmas",
        type=float,
        nargs="*",
        default=[0.3, 0.5, 0.7],
        help="noise levels of the rendered scenes (exact masks); none: generated images only",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    bundle = load_pipeline(args.model, device="cpu", allow_cpu=True)
    start = time.perf_counter()
    result = evaluate(
        bundle,
        list(HELD_OUT_CAPTIONS),
        seeds=args.seeds,
        steps=args.steps,
        guidance=args.guidance,
        sigmas=tuple(args.sigmas),
    )
    result["config"] = {
        "model": args.model,
        "captions": "HELD_OUT_CAPTIONS",
        "seeds": args.seeds,
        "steps": args.steps,
        "guidance": bundle.default_guidance if args.guidance is None else args.guidance,
        "threshold": THRESHOLD,
        "sigmas": args.sigmas,
        "maps": "glimpse.attention.word_maps of the trace and of the concept trace, default options, 32x32",
        "concepts": "the caption's content words (glimpse.attention.concept.default_concepts)",
        "seconds": round(time.perf_counter() - start, 1),
    }
    for part in ("generated", "scenes"):
        if part in result:
            print(f"{part}: {result[part]['summary']['scored']} (object, word) pairs")
            print(table(result[part]["summary"]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
