"""shapes-mmdit: the committed SD3-style checkpoint loads as the ``sd3`` kind, generates a 32x32 image whose word
maps the attention lens traces, the maps land on their own objects (slow), and a 3-step training run writes a
folder that loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from glimpse.attention import generate_with_attention, word_maps
from glimpse.evaluation.shapes_scenes import HELD_OUT_CAPTIONS
from models.diffusion import EMBEDDED_PIPELINES, load_pipeline
from models.shapes_mmdit_pipeline import ShapesMMDiTPipeline

PROMPT = "a red circle to the left of a blue square"


@pytest.fixture(scope="module")
def bundle():
    return load_pipeline("shapes-mmdit", device="cpu")


def test_it_loads_as_an_sd3_transformer_stored_in_float16(bundle):
    assert bundle.kind == "sd3" and isinstance(bundle.pipe, ShapesMMDiTPipeline)
    assert type(bundle.pipe.transformer).__name__ == "SD3Transformer2DModel"
    assert (bundle.resolution, bundle.max_tokens, bundle.default_guidance) == (
        32,
        16,
        bundle.pipe.default_guidance_scale,
    )
    assert "circle" in bundle.vocabulary and bundle.pipe.transformer.dtype == torch.float32
    weights = EMBEDDED_PIPELINES["shapes-mmdit"] / "transformer" / "diffusion_pytorch_model.safetensors"
    with safe_open(str(weights), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}


def test_it_generates_and_its_word_maps_are_traced(bundle):
    result = generate_with_attention(bundle, PROMPT, seed=0, steps=3)
    assert result.image.shape == (32, 32, 3)
    maps = word_maps(result.trace, size=32)
    assert maps.shape == (len(PROMPT.split()), 32, 32)
    assert len(result.trace.layers) == bundle.pipe.transformer.config.num_layers  # one joint block each
    steps, tokens, h, w = result.trace.layer_maps[0].shape
    assert (steps, tokens, h, w) == (3, len(PROMPT.split()) + 2, 16, 16)  # the 2x2 patches' 16x16 grid


@pytest.mark.slow
def test_colour_and_shape_words_land_more_on_their_own_object_than_the_other():
    from training.shapes_t2i.evaluate import EvalConfig, evaluate

    pipe = load_pipeline("shapes-mmdit", device="cpu").pipe
    summary = evaluate(pipe, list(HELD_OUT_CAPTIONS[:6]), EvalConfig(seeds=(0,)))["summary"]
    assert summary["iou_own"] is not None and summary["iou_other"] is not None
    assert summary["iou_own"] > summary["iou_other"] + 0.05
    assert summary["inside_own"] > 0.5


def test_a_three_step_training_run_writes_a_folder_that_loads(tmp_path: Path):
    from training.shapes_mmdit.train import main

    main(
        ["--out", str(tmp_path), "--steps", "3", "--batch-size", "4", "--tiny", "--eval-every", "0", "--log-every", "1"]
    )
    assert (tmp_path / "state.pt").is_file()
    loaded = load_pipeline(str(tmp_path / "last"), device="cpu")
    assert loaded.kind == "sd3" and loaded.pipe.transformer.config.num_layers == 1
    image = loaded.pipe(PROMPT, num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images
    assert image.shape == (1, 32, 32, 3)


def test_the_diffusion_classifier_scores_it_in_pixel_space_and_reads_the_relation(bundle):
    from glimpse.diffusion_classifier import adapter_for, classify
    from glimpse.diffusion_classifier.adapters import FlowMatching
    from glimpse.evaluation.shapes_scenes import parse_caption, render_scene

    model = adapter_for(bundle.pipe, bundle.model_id)
    assert isinstance(model, FlowMatching) and model.pixel_space and model.embedded
    scene = render_scene(parse_caption(PROMPT), np.random.default_rng(0))
    flipped = PROMPT.replace("left", "right")
    assert classify(model, scene.image, [PROMPT, flipped], samples=10).prediction == 0
    with pytest.raises(ValueError, match="unknown words"):
        model.check_prompt("a purple circle")


def test_the_card_reports_what_eval_json_holds():
    folder = EMBEDDED_PIPELINES["shapes-mmdit"]
    held_out = json.loads((folder / "EVAL.json").read_text())["held_out_two_object"]["summary"]
    card = (folder / "README.md").read_text()
    for key in ("colour_acc", "shape_acc", "placement_acc", "all_correct", "iou_own", "iou_other"):
        assert f"**{held_out[key]:.2f}**" in card, key
