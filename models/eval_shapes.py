"""Evaluate the embedded shapes text-to-image model on held-out captions.

Two kinds of measurement, both from generated samples (DDIM, 25 trailing steps, CFG 4 by default):

1. **Does the image show what the caption asks?** Each image is segmented by colour against white:
   a pixel whose RGB distance from white exceeds ``WHITE_DIST`` is assigned to the nearest palette
   colour if that colour is within ``PALETTE_DIST``. For every requested object:

   * *colour* - its colour covers at least ``MIN_PIXELS`` pixels (largest connected component);
   * *shape*  - the fill ratio of that component in its bounding box, area / (w * h), is nearest to
     the ideal of the requested shape (square 1.0, circle pi/4, triangle 1/2);
   * *placement* (two objects) - the centroid of the first object minus that of the second, along
     the relation's axis, has the relation's sign and a magnitude of at least ``MIN_OFFSET`` pixels.

2. **Do the word maps land on the objects?** Cross-attention maps are recorded with the DAAM recipe
   (Tang et al. 2023, "What the DAAM: Interpreting Stable Diffusion Using Cross Attention"): every
   ``attn2`` layer computes A = softmax(Q K^T / sqrt(d)) over the text tokens; only the conditional
   half of the classifier-free-guidance batch is kept; A is summed over timesteps per (layer, head),
   each summed map is upsampled bicubically to 32x32 and clamped at 0, and the maps are averaged over
   all (layer, head) pairs. A word's map is min-max normalised and thresholded at 0.4 (DAAM's tau);
   we report IoU(map, pixels of the word's own object) and IoU(map, pixels of the other object).

The recorder below is deliberately self-contained (it will be replaced by the general tracer in
``glimpse/attention``).

Usage::

    python -m models.eval_shapes --model models/embedded/shapes_t2i --seeds 0 1 \
        --out models/embedded/shapes_t2i/EVAL.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from models.shapes_data import (
    COLOURS,
    HELD_OUT_CAPTIONS,
    IMAGE_SIZE,
    RELATIONS,
    CaptionSpec,
    parse_caption,
    single_object_specs,
    word_token_positions,
)
from models.shapes_pipeline import DEFAULT_GUIDANCE_SCALE, ShapesPipeline

logger = logging.getLogger(__name__)

WHITE_DIST = 0.25  # RGB distance (0..sqrt 3) from white above which a pixel is "ink"
PALETTE_DIST = 0.35  # max RGB distance to the nearest palette colour
MIN_PIXELS = 10  # an object smaller than this does not count as drawn (rendered objects: >= 35 px)
MIN_OFFSET = 2.0  # pixels between centroids for a relation to count
ATTN_THRESHOLD = 0.4  # DAAM's tau on the min-max normalised word map
SHAPE_FILL = {"square": 1.0, "circle": float(np.pi / 4), "triangle": 0.5}

_PALETTE = np.array(list(COLOURS.values()), dtype=np.float32) / 255.0
_PALETTE_NAMES = list(COLOURS)


# --------------------------------------------------------------------------- segmentation
def segment_colours(image: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean mask per palette colour of a float [0, 1] (H, W, 3) image (all pixels of that colour)."""
    img = np.asarray(image, dtype=np.float32)
    ink = np.linalg.norm(1.0 - img, axis=-1) > WHITE_DIST
    dist = np.linalg.norm(img[..., None, :] - _PALETTE, axis=-1)  # (H, W, K)
    nearest = dist.argmin(-1)
    close = dist.min(-1) < PALETTE_DIST
    return {name: ink & close & (nearest == k) for k, name in enumerate(_PALETTE_NAMES)}


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of ``mask`` (stray pixels elsewhere are ignored)."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return mask.copy()
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    return labels == (1 + int(np.argmax(sizes)))


def classify_shape(mask: np.ndarray) -> str | None:
    """Shape whose ideal bounding-box fill ratio is nearest to that of ``mask``; None if too small."""
    if mask.sum() < MIN_PIXELS:
        return None
    ys, xs = np.nonzero(mask)
    fill = mask.sum() / float((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))
    return min(SHAPE_FILL, key=lambda s: abs(SHAPE_FILL[s] - fill))


def centroid(mask: np.ndarray) -> np.ndarray:
    """(x, y) centre of mass in pixels."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def judge_image(image: np.ndarray, spec: CaptionSpec) -> dict:
    """Colour / shape / placement verdicts for one generated image (see the module docstring)."""
    colour_masks = segment_colours(image)
    objects = [largest_component(colour_masks[o.colour]) for o in spec.objects]
    colour_ok = [bool(m.sum() >= MIN_PIXELS) for m in objects]
    shapes = [classify_shape(m) if ok else None for m, ok in zip(objects, colour_ok)]
    shape_ok = [s == o.shape for s, o in zip(shapes, spec.objects)]
    requested = {o.colour for o in spec.objects}
    extra = [c for c, m in colour_masks.items() if c not in requested and m.sum() >= MIN_PIXELS]
    verdict = {
        "colour_ok": colour_ok,
        "shape_detected": shapes,
        "shape_ok": shape_ok,
        "extra_colours": extra,
        "object_masks": objects,
        "colour_masks": [colour_masks[o.colour] for o in spec.objects],
    }
    if spec.relation is not None:
        placement = False
        if all(colour_ok):
            axis, sign = RELATIONS[spec.relation]
            d = (centroid(objects[0]) - centroid(objects[1]))[axis]
            placement = bool(np.sign(d) == sign and abs(d) >= MIN_OFFSET)
        verdict["placement_ok"] = placement
    return verdict


# --------------------------------------------------------------------------- attention (DAAM)
def explicit_cross_attention(attn, hidden_states, encoder_hidden_states=None) -> tuple[torch.Tensor, torch.Tensor]:
    """What a stock ``attn2`` processor computes, with A = softmax(Q K^T / sqrt(d)) formed explicitly (the
    fused SDPA path never forms A). Returns the layer's output and A as (B, heads, h*w, tokens), with
    gradients; the recorders here and in ``models.train_shapes`` differ only in what they keep of A."""
    batch = hidden_states.shape[0]
    context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
    query = attn.head_to_batch_dim(attn.to_q(hidden_states))
    key = attn.head_to_batch_dim(attn.to_k(context))
    value = attn.head_to_batch_dim(attn.to_v(context))
    probs = attn.get_attention_scores(query, key, None)  # (B*heads, hw, T)
    out = attn.batch_to_head_dim(torch.bmm(probs, value))
    out = attn.to_out[1](attn.to_out[0](out)) / attn.rescale_output_factor
    return out, probs.view(batch, attn.heads, *probs.shape[1:])


class _CrossAttentionRecorder:
    """Attention processor for one ``attn2`` layer that also accumulates its probabilities.

    Computes A = softmax(Q K^T / sqrt(d)) explicitly (the fused SDPA path never forms A), uses it for
    the output A V, and adds the conditional half of A to ``self.total`` (sum over timesteps).
    """

    def __init__(self, cfg: bool) -> None:
        self.cfg = cfg
        self.total: torch.Tensor | None = None  # (B, heads, h*w, tokens)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        out, probs = explicit_cross_attention(attn, hidden_states, encoder_hidden_states)
        recorded = probs.detach().float()
        if self.cfg:
            recorded = recorded[recorded.shape[0] // 2 :]  # [uncond, cond] -> keep the conditional half
        self.total = recorded if self.total is None else self.total + recorded
        return out


def generate_with_maps(
    pipe: ShapesPipeline,
    prompts: list[str],
    *,
    seed: int,
    num_inference_steps: int = 25,
    guidance_scale: float = DEFAULT_GUIDANCE_SCALE,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``prompts`` (one shared seed) and their DAAM token maps.

    Returns
    -------
    images : float32 (B, 32, 32, 3) in [0, 1]
    maps : float32 (B, T, 32, 32), the head- and layer-averaged token maps (T = token positions).
    """
    unet = pipe.unet
    original = dict(unet.attn_processors)
    cfg = guidance_scale > 1.0
    recorders = {name: _CrossAttentionRecorder(cfg) for name in original if name.endswith("attn2.processor")}
    # set_attn_processor pops from the dict it is given, hence the copies
    unet.set_attn_processor({**original, **recorders})
    try:
        generator = torch.Generator().manual_seed(seed)
        images = pipe(
            prompts,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            generator=generator,
        ).images
    finally:
        unet.set_attn_processor(dict(original))
    upsampled = []
    for rec in recorders.values():
        b, heads, hw, tokens = rec.total.shape
        side = int(round(hw**0.5))
        m = rec.total.permute(0, 1, 3, 2).reshape(b * heads, tokens, side, side)
        m = F.interpolate(m, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bicubic", align_corners=False).clamp_min(0)
        upsampled.append(m.view(b, heads, tokens, IMAGE_SIZE, IMAGE_SIZE))
    maps = torch.cat(upsampled, dim=1).mean(dim=1)
    return np.asarray(images, dtype=np.float32), maps.numpy()


def binarise(word_map: np.ndarray, threshold: float = ATTN_THRESHOLD) -> np.ndarray:
    """DAAM binarisation: min-max normalise, then keep values >= threshold."""
    lo, hi = float(word_map.min()), float(word_map.max())
    if hi - lo <= 1e-12:
        return np.zeros_like(word_map, dtype=bool)
    return (word_map - lo) / (hi - lo) >= threshold


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


# --------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class EvalConfig:
    seeds: tuple[int, ...] = (0,)
    num_inference_steps: int = 25
    guidance_scale: float = DEFAULT_GUIDANCE_SCALE
    batch_size: int = 8


def evaluate(pipe: ShapesPipeline, captions: list[str], config: EvalConfig = EvalConfig()) -> dict:
    """Generate every caption for every seed, judge the images and the word maps; return a summary.

    Summary keys (fractions in [0, 1]): ``colour_acc`` and ``shape_acc`` per object, ``placement_acc``
    and ``all_correct`` per two-object image, ``clean_rate`` (no unrequested palette colour),
    ``iou_own`` / ``iou_other`` (mean IoU of the colour and shape word maps with their own / the
    other object's pixels; objects whose colour was not drawn are skipped), ``inside_own`` (the share of
    a word's thresholded map that lies on its own object: 1 when the map is a peak inside the object,
    which IoU scores low because the peak is smaller than the object), and
    ``score`` = colour + shape + placement + iou_own.
    """
    specs = [parse_caption(c) for c in captions]
    records = []
    for seed in config.seeds:
        for start in range(0, len(specs), config.batch_size):
            chunk = specs[start : start + config.batch_size]
            images, maps = generate_with_maps(
                pipe,
                [s.text for s in chunk],
                seed=seed,
                num_inference_steps=config.num_inference_steps,
                guidance_scale=config.guidance_scale,
            )
            for spec, image, token_maps in zip(chunk, images, maps):
                v = judge_image(image, spec)
                rec = {
                    "caption": spec.text,
                    "seed": seed,
                    "colour_ok": v["colour_ok"],
                    "shape_detected": v["shape_detected"],
                    "shape_ok": v["shape_ok"],
                    "extra_colours": v["extra_colours"],
                    "iou_own": [],
                    "iou_other": [],
                }
                if "placement_ok" in v:
                    rec["placement_ok"] = v["placement_ok"]
                positions = word_token_positions(spec)
                for i, pos in enumerate(positions):
                    if not v["colour_ok"][i]:
                        continue
                    own = v["colour_masks"][i]
                    for kind in ("colour", "shape"):
                        word_mask = binarise(token_maps[pos[kind]])
                        inside = float((word_mask & own).sum() / word_mask.sum()) if word_mask.any() else 0.0
                        rec["iou_own"].append({"word": kind, "iou": iou(word_mask, own), "inside": inside})
                        if len(positions) == 2 and v["colour_ok"][1 - i]:
                            other = v["colour_masks"][1 - i]
                            rec["iou_other"].append({"word": kind, "iou": iou(word_mask, other)})
                records.append(rec)
    return {"summary": summarise(records), "records": records}


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def summarise(records: list[dict]) -> dict:
    """Aggregate per-image records into accuracies and mean IoUs (see :func:`evaluate`)."""
    colour = [ok for r in records for ok in r["colour_ok"]]
    shape = [ok for r in records for ok in r["shape_ok"]]
    placement = [r["placement_ok"] for r in records if "placement_ok" in r]
    all_ok = [all(r["colour_ok"]) and all(r["shape_ok"]) and r["placement_ok"] for r in records if "placement_ok" in r]
    own = [x["iou"] for r in records for x in r["iou_own"]]
    other = [x["iou"] for r in records for x in r["iou_other"]]
    by_word = {
        f"iou_{side}_{kind}": _mean([x["iou"] for r in records for x in r[f"iou_{side}"] if x["word"] == kind])
        for side in ("own", "other")
        for kind in ("colour", "shape")
    }
    summary = {
        "images": len(records),
        "colour_acc": _mean(colour),
        "shape_acc": _mean(shape),
        "placement_acc": _mean(placement),
        "all_correct": _mean(all_ok),
        "clean_rate": _mean([not r["extra_colours"] for r in records]),
        "iou_own": _mean(own),
        "iou_other": _mean(other),
        **by_word,
        "inside_own": _mean([x["inside"] for r in records for x in r["iou_own"] if "inside" in x]),
        "inside_own_shape": _mean(
            [x["inside"] for r in records for x in r["iou_own"] if "inside" in x and x["word"] == "shape"]
        ),
    }
    parts = [summary["colour_acc"], summary["shape_acc"], summary["placement_acc"], summary["iou_own"]]
    summary["score"] = float(sum(p or 0.0 for p in parts))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/embedded/shapes_t2i")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=None, help="CFG scale (default: the pipeline's)")
    parser.add_argument(
        "--sweep", type=float, nargs="*", default=[], help="also summarise the held-out captions at these CFG scales"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the JSON here")
    parser.add_argument("--no-single", action="store_true", help="skip the 12 one-object captions")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe = ShapesPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    guidance = DEFAULT_GUIDANCE_SCALE if args.guidance is None else args.guidance
    config = EvalConfig(seeds=tuple(args.seeds), num_inference_steps=args.steps, guidance_scale=guidance)
    t0 = time.time()
    result = {
        "model": args.model,
        "config": {
            "seeds": list(config.seeds),
            "num_inference_steps": config.num_inference_steps,
            "guidance_scale": config.guidance_scale,
            "scheduler": "DDIM, trailing spacing",
            "attention_threshold": ATTN_THRESHOLD,
            "attention_maps": "DAAM: attn2 softmax(QK^T/sqrt d), conditional half, sum over steps, "
            "bicubic to 32x32, clamp>=0, mean over heads and layers (16x16, 8x8, mid)",
            "min_pixels": MIN_PIXELS,
            "min_offset_px": MIN_OFFSET,
        },
        "held_out_two_object": evaluate(pipe, list(HELD_OUT_CAPTIONS), config),
    }
    if not args.no_single:
        result["single_object"] = evaluate(pipe, [s.text for s in single_object_specs()], config)
    if args.sweep:
        result["guidance_sweep_held_out"] = {
            str(g): evaluate(pipe, list(HELD_OUT_CAPTIONS), replace(config, guidance_scale=g))["summary"]
            for g in args.sweep
        }
        for g, summary in result["guidance_sweep_held_out"].items():
            print(
                "guidance",
                g,
                json.dumps({k: summary[k] for k in ("colour_acc", "shape_acc", "placement_acc", "iou_own", "score")}),
            )
    result["eval_seconds"] = round(time.time() - t0, 1)
    for key in ("held_out_two_object", "single_object"):
        if key in result:
            print(key, json.dumps(result[key]["summary"], indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print("wrote", args.out)


if __name__ == "__main__":
    main()
