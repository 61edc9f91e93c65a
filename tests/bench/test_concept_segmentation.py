"""bench/concept_segmentation.py scores the maps it is given: a generation faked from a rendered scene whose maps
are the objects' own masks (or the other object's) scores IoU 1 (or 0) against the segmented objects."""

from __future__ import annotations

import numpy as np
import pytest

import bench.concept_segmentation as bench
from glimpse.attention.concept import default_concepts
from glimpse.attention.trace import AttentionTrace
from glimpse.evaluation.shapes_scenes import HELD_OUT_CAPTIONS, parse_caption, render_scene, word_token_positions


def _trace(words: tuple[str, ...], maps: np.ndarray, tokens: int) -> AttentionTrace:
    word_tokens = (
        tuple((k + 1,) for k in range(len(words))) if tokens > len(words) else tuple((k,) for k in range(len(words)))
    )
    return AttentionTrace(
        prompt="p", tokens=tuple(f"t{k}" for k in range(tokens)), words=words, word_tokens=word_tokens,
        timesteps=np.array([999]), layers=("transformer_blocks.0.attn",), layer_maps=(maps[None].astype(np.float16),),
        model_id="fake", seed=0, steps=1, guidance=1.0, image_shape=(32, 32),
    )  # fmt: skip


def test_own_masks_score_one_and_the_other_objects_mask_zero():
    caption = HELD_OUT_CAPTIONS[0]
    spec = parse_caption(caption)
    scene = render_scene(spec, np.random.default_rng(0))
    words = tuple(caption.split())
    masks = [m.astype(np.float32) for m in scene.masks]
    cross = np.zeros((len(words) + 2, 32, 32), np.float32)  # [CLS] words [SEP]
    for i, positions in enumerate(word_token_positions(spec)):
        cross[positions["colour"]], cross[positions["shape"]] = masks[i], masks[1 - i]  # shape word: other object
    concepts = default_concepts(words)

    def own(names):
        return np.stack([masks[0] if c in (spec.objects[0].colour, spec.objects[0].shape) else masks[1] for c in names])

    colours = tuple(o.colour for o in spec.objects)
    traces = {"content": _trace(concepts, own(concepts), len(concepts)), "colour": _trace(colours, own(colours), 2)}
    record = bench.score_maps(caption, 0, _trace(words, cross, len(words) + 2), traces, list(scene.masks))
    assert record["concepts"] == list(concepts) and len(record["rows"]) == 4
    summary = bench.summarise([record])
    assert summary["concept_attention"]["miou_own"] == 1.0 and summary["concept_attention"]["miou_other"] == 0.0
    assert summary["cross_attention"]["miou_own_colour"] == 1.0 and summary["cross_attention"]["miou_own_shape"] == 0.0
    split = summary["concept_attention_split"]  # no shape set recorded: the colour words only
    assert split["pairs"] == 2 and split["miou_own_colour"] == 1.0 and split["miou_own_shape"] is None
    assert "content words | 4 | 1.000 ± 0.000" in bench.table(summary)


def test_a_rendered_scene_is_scored_against_its_exact_masks_on_a_random_mmdit():
    import torch

    mmdit = pytest.importorskip("models.shapes_mmdit_pipeline")
    from models.diffusion import bundle_from_pipeline

    torch.manual_seed(0)
    pipe = mmdit.ShapesMMDiTPipeline.build("models/embedded/shapes_t2i", layers=2, heads=2, head_dim=16)
    bundle = bundle_from_pipeline(pipe, "random-mmdit", torch.device("cpu"))
    record = bench.score_scene(bundle, HELD_OUT_CAPTIONS[0], seed=0, sigmas=(0.3, 0.6))
    assert len(record["rows"]) == 4  # both objects are drawn in a rendered scene: colour and shape word each
    generated = bench.score_caption(bundle, HELD_OUT_CAPTIONS[0], seed=0, steps=2, guidance=None)
    assert generated["concepts"] == record["concepts"]
    for row in record["rows"]:
        for method in bench.METHODS:
            assert 0.0 <= row[method]["iou_own"] <= 1.0 and 0.0 <= row[method]["iou_other"] <= 1.0
