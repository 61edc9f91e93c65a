"""Embedded shapes text-to-image model: data, pipeline contract, training smoke run, evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from glimpse.attention import generate_with_attention, word_maps
from glimpse.evaluation import shapes_scenes as data
from models.diffusion import bundle_from_pipeline
from models.shapes_pipeline import ShapesPipeline, coordinate_planes
from training.shapes_t2i.evaluate import EvalConfig, binarise, evaluate, generate_with_maps, iou, judge_image
from training.shapes_t2i.train import (
    TINY_UNET,
    grounding_loss,
    grounding_targets,
    install_grounding,
    main,
    parse_args,
    pixel_grounding_loss,
    role_loss,
    role_targets,
    sample_timesteps,
    train,
)

EMBEDDED = Path(__file__).resolve().parents[2] / "models" / "embedded" / "shapes_t2i"


@pytest.fixture(scope="module")
def tiny_pipe() -> ShapesPipeline:
    torch.manual_seed(0)
    pipe = ShapesPipeline.build(**TINY_UNET)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ----------------------------------------------------------------------------- data
def test_held_out_scenes_never_in_training_in_either_phrasing():
    train_specs = set(data.TRAIN_TWO_OBJECT_SPECS)
    assert len(data.HELD_OUT_CAPTIONS) == 24
    for spec in data.HELD_OUT_SPECS:
        assert spec not in train_specs and spec.mirrored() not in train_specs
    assert len(train_specs) + len(data.HELD_OUT_SPECS) == len(data.two_object_specs()) == 432
    relations = [s.relation for s in data.HELD_OUT_SPECS]
    assert all(relations.count(r) == 6 for r in data.RELATIONS)


def test_render_scene_matches_caption_and_masks():
    rng = np.random.default_rng(0)
    for caption in [
        "a red circle to the left of a blue square",
        "a green triangle below a yellow circle",
        "a blue square",
    ]:
        scene = data.render_scene(data.parse_caption(caption), rng)
        assert scene.image.shape == (32, 32, 3) and scene.image.dtype == np.uint8
        assert scene.caption == caption
        for obj, mask in zip(scene.spec.objects, scene.masks):
            assert mask.sum() >= 35
            assert (scene.image[mask] == data.COLOURS[obj.colour]).all()
        background = ~np.logical_or.reduce(scene.masks)
        assert (scene.image[background] == 255).all()


def test_parse_caption_rejects_other_grammar():
    with pytest.raises(ValueError, match="expected"):
        data.parse_caption("a red circle near a blue square")
    assert data.parse_caption("a red circle above a blue square").mirrored().text == "a blue square below a red circle"


def test_judge_recovers_ground_truth_scenes():
    """The pixel-level judge must be (almost) always right on the renderer's own images."""
    rng = np.random.default_rng(1)
    verdicts = []
    for _ in range(200):
        spec = data.sample_training_spec(rng, p_single=0.2)
        v = judge_image(data.render_scene(spec, rng).image / 255.0, spec)
        verdicts.append(
            all(v["colour_ok"]) and all(v["shape_ok"]) and v.get("placement_ok", True) and not v["extra_colours"]
        )
    assert np.mean(verdicts) >= 0.98


def test_judge_rejects_swapped_placement():
    rng = np.random.default_rng(2)
    spec = data.parse_caption("a red circle to the left of a blue square")
    image = data.render_scene(spec.mirrored(), rng).image[:, ::-1] / 255.0  # mirror the picture
    assert judge_image(image, spec)["placement_ok"] is False
    assert judge_image(np.ones((32, 32, 3)), spec)["colour_ok"] == [False, False]


def test_iou_and_binarise():
    a = np.zeros((4, 4), bool)
    a[:2] = True
    assert iou(a, a) == 1.0 and iou(a, ~a) == 0.0
    m = np.arange(16, dtype=float).reshape(4, 4)
    assert binarise(m).sum() == 10  # (v - 0) / 15 >= 0.4  <=>  v >= 6
    assert not binarise(np.ones((4, 4))).any()


# ----------------------------------------------------------------------------- pipeline contract
def test_prompt_validation(tiny_pipe):
    with pytest.raises(ValueError, match="empty"):
        tiny_pipe("   ")
    with pytest.raises(ValueError, match=r"unknown words \['purple', 'hexagon'\].*vocabulary"):
        tiny_pipe("a purple hexagon")
    with pytest.raises(ValueError, match="at most 16 tokens"):
        tiny_pipe(" ".join(["a red circle"] * 5))
    assert set(data.VOCABULARY) == set(tiny_pipe.vocabulary)


def test_tokenize_words_one_token_per_word(tiny_pipe):
    prompt = "a red circle to the left of a blue square"
    tokens = tiny_pipe.tokenize_words(prompt)
    assert len(tokens) == tiny_pipe.tokenizer.model_max_length == 16
    assert tokens[0] == "[CLS]" and tokens[11] == "[SEP]"
    assert tokens[1:11] == prompt.split()


def test_cfg_batch_order_and_callback(tiny_pipe):
    """The UNet sees [unconditional, conditional]; the callback can read and replace the sample."""
    seen, steps = [], []

    def hook(module, args, kwargs):
        seen.append(kwargs["encoder_hidden_states"].detach().clone())

    handle = tiny_pipe.unet.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        out = tiny_pipe(
            "a red circle",
            num_inference_steps=3,
            guidance_scale=4.0,
            callback_on_step_end=lambda p, i, t, kw: steps.append(int(t)) or kw,
        )
    finally:
        handle.remove()
    assert out.images.shape == (1, 32, 32, 3)
    assert steps[0] == 999 and len(steps) == 3  # trailing spacing starts from pure noise
    uncond, cond = seen[0].chunk(2)
    assert torch.allclose(uncond, tiny_pipe.encode_prompt([""]))
    assert torch.allclose(cond, tiny_pipe.encode_prompt(["a red circle"]))


def test_same_seed_same_image(tiny_pipe):
    run = lambda: (  # noqa: E731
        tiny_pipe(
            ["a blue square", "a green triangle"],
            num_inference_steps=2,
            generator=torch.Generator().manual_seed(3),
        ).images
    )
    a, b = run(), run()
    assert a.shape == (2, 32, 32, 3) and np.array_equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 1.0


def test_committed_checkpoint_loads_and_generates():
    pipe = ShapesPipeline.from_pretrained(str(EMBEDDED))
    pipe.set_progress_bar_config(disable=True)
    assert pipe.unet.dtype == torch.float32
    assert pipe.unet.config.block_out_channels == [32, 64, 128]
    assert pipe.unet.config.in_channels == 5 and pipe.image_channels == 3  # image + coordinate planes
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    pil = pipe("a red circle to the left of a blue square", num_inference_steps=2, output_type="pil").images
    assert pil[0].size == (32, 32)


@pytest.mark.slow
def test_committed_checkpoint_draws_the_scene_and_its_word_maps_land_on_the_objects():
    # all 24 held-out captions (never trained on, in either phrasing), seed 0, the default sampler. Measured on
    # the shipped weights (EVAL.json, seed 0): colour 1.0, shape 0.90, placement 1.0, all right 0.79, 99 % on object
    pipe = ShapesPipeline.from_pretrained(str(EMBEDDED))
    pipe.set_progress_bar_config(disable=True)
    summary = evaluate(pipe, list(data.HELD_OUT_CAPTIONS), EvalConfig(seeds=(0,)))["summary"]
    assert summary["images"] == 24
    assert summary["colour_acc"] >= 0.9 and summary["shape_acc"] >= 0.75
    assert summary["placement_acc"] >= 0.9 and summary["all_correct"] >= 0.6
    # colour and shape words: the thresholded map lies on its own object, not on the other one
    assert summary["inside_own"] >= 0.9 and summary["inside_own_shape"] >= 0.9
    assert summary["iou_own_shape"] > 0.25 and summary["iou_own_shape"] > 5 * summary["iou_other_shape"]
    assert summary["iou_own"] > 0.25 and summary["iou_own"] > 5 * summary["iou_other"]


# ----------------------------------------------------------------------------- training + eval
def test_tiny_training_run_saves_a_loadable_pipeline(tmp_path):
    args = parse_args(
        [
            "--out",
            str(tmp_path),
            "--steps",
            "4",
            "--batch-size",
            "4",
            "--tiny",
            "--eval-every",
            "2",
            "--eval-prompts",
            "2",
            "--log-every",
            "2",
            "--save-every",
            "2",
        ]
    )
    result = train(args)
    assert result["steps"] == 4 and np.isfinite(result["loss"])
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "loss" in m] == [2, 4]
    assert any("eval" in m for m in metrics)
    for folder in ("last", "best"):
        pipe = ShapesPipeline.from_pretrained(str(tmp_path / folder))
        pipe.set_progress_bar_config(disable=True)
        img = pipe(
            "a yellow triangle above a red square", num_inference_steps=2, generator=torch.Generator().manual_seed(0)
        ).images
        assert img.shape == (1, 32, 32, 3) and np.isfinite(img).all()
    # export stores float16 weights that reload in float32 and sample (nearly) the same image
    main(["--export-from", str(tmp_path / "best"), "--out", str(tmp_path / "export")])  # img came from best
    exported = ShapesPipeline.from_pretrained(str(tmp_path / "export"))
    exported.set_progress_bar_config(disable=True)
    assert exported.unet.dtype == torch.float32
    again = exported(
        "a yellow triangle above a red square", num_inference_steps=2, generator=torch.Generator().manual_seed(0)
    ).images
    assert np.abs(again - img).max() < 0.05
    # resuming continues from the saved step instead of starting over
    args = parse_args(
        [
            "--out",
            str(tmp_path),
            "--steps",
            "8",
            "--stop-at",
            "5",
            "--batch-size",
            "4",
            "--tiny",
            "--eval-every",
            "0",
            "--log-every",
            "1",
            "--resume",
        ]
    )
    assert train(args)["steps"] == 5  # --stop-at ends the run early, on the lr schedule of --steps 8
    # a state saved with the role read-out also resumes with the read-out switched off
    args = parse_args(
        ["--out", str(tmp_path), "--steps", "6", "--batch-size", "4", "--tiny", "--eval-every", "0", "--resume"]
        + ["--role-weight", "0"]
    )
    assert train(args)["steps"] == 6


def test_evaluation_maps_are_the_apps_word_maps(tiny_pipe):
    """The model card's map numbers are measured by the code users run: the app's tracer and aggregation."""
    before = {k: type(v) for k, v in tiny_pipe.unet.attn_processors.items()}
    bundle = bundle_from_pipeline(tiny_pipe, "tiny", torch.device("cpu"))
    image, maps = generate_with_maps(bundle, "a red circle", seed=3, num_inference_steps=2, guidance_scale=1.5)
    assert image.shape == (32, 32, 3) and image.dtype == np.float32
    app = generate_with_attention(bundle, "a red circle", seed=3, steps=2, guidance=1.5)
    np.testing.assert_array_equal(maps, word_maps(app.trace, size=32))
    assert maps.shape == (3, 32, 32) and (maps >= 0).all()
    assert {k: type(v) for k, v in tiny_pipe.unet.attn_processors.items()} == before
    # recorded sampling gives the same image as plain sampling
    plain = tiny_pipe(
        "a red circle", num_inference_steps=2, guidance_scale=1.5, generator=torch.Generator().manual_seed(3)
    )
    assert np.abs(image - plain.images[0]).max() <= 0.5 / 255 + 1e-4  # the app's image is rounded to uint8


def test_evaluate_summary_keys(tiny_pipe):
    result = evaluate(
        tiny_pipe,
        ["a red circle to the left of a blue square", "a green triangle"],
        EvalConfig(seeds=(0,), num_inference_steps=2),
    )
    s = result["summary"]
    assert s["images"] == 2 and len(result["records"]) == 2
    for key in ("colour_acc", "shape_acc", "placement_acc", "iou_own", "inside_own", "inside_own_shape", "score"):
        assert key in s
    assert 0.0 <= s["colour_acc"] <= 1.0


def test_summary_inside_own_is_the_share_of_a_map_on_its_object():
    from training.shapes_t2i.evaluate import summarise

    record = {
        "colour_ok": [True, True],
        "shape_ok": [True, False],
        "placement_ok": True,
        "extra_colours": [],
        "iou_own": [
            {"word": "colour", "iou": 0.3, "inside": 1.0},
            {"word": "shape", "iou": 0.2, "inside": 0.5},
        ],
        "iou_other": [{"word": "colour", "iou": 0.0}, {"word": "shape", "iou": 0.1}],
    }
    s = summarise([record])
    assert s["inside_own"] == pytest.approx(0.75) and s["inside_own_shape"] == pytest.approx(0.5)
    assert s["iou_own"] == pytest.approx(0.25) and s["all_correct"] == 0.0 and s["shape_acc"] == 0.5


def test_shipped_model_draws_the_requested_colour_and_its_colour_word_map_lands_on_it():
    """The committed trained checkpoint, 25 DDIM steps at the default CFG scale: one-object prompts get
    their colour, and the colour word's DAAM map overlaps the drawn object more than the background."""
    pipe = ShapesPipeline.from_pretrained(str(EMBEDDED))
    pipe.set_progress_bar_config(disable=True)
    bundle = bundle_from_pipeline(pipe, "shapes-t2i", torch.device("cpu"))
    specs = [data.parse_caption(f"a {c} {s}") for c, s in zip(data.COLOURS, ("circle", "square", "triangle", "circle"))]
    for spec in specs:
        image, maps = generate_with_maps(bundle, spec.text, seed=0)
        verdict = judge_image(image, spec)
        assert verdict["colour_ok"] == [True], spec.text
        word_map, drawn = binarise(maps[1]), verdict["colour_masks"][0]  # word 1 = colour
        assert iou(word_map, drawn) > 0.2 and (word_map & drawn).sum() >= 0.9 * word_map.sum(), spec.text


def test_sample_timesteps_biases_the_requested_share_to_the_noisier_half():
    torch.manual_seed(0)
    uniform = sample_timesteps(4000, 1000)
    biased = sample_timesteps(4000, 1000, high_t_frac=0.5)
    for t in (uniform, biased):
        assert t.dtype == torch.int64 and int(t.min()) >= 0 and int(t.max()) <= 999
    assert abs(float((uniform >= 500).float().mean()) - 0.5) < 0.03
    assert abs(float((biased >= 500).float().mean()) - 0.75) < 0.03  # half forced high + half of the rest
    assert bool((biased[:2000] >= 500).all())
    with pytest.raises(ValueError, match="high-t-frac"):
        sample_timesteps(4, 1000, high_t_frac=1.5)


# ----------------------------------------------------------------------------- position + grounding
def test_unet_input_appends_coordinate_planes(tiny_pipe):
    assert tiny_pipe.unet.config.in_channels == 5 and tiny_pipe.image_channels == 3
    x = torch.randn(2, 3, 32, 32)
    inp = tiny_pipe.unet_input(x)
    assert inp.shape == (2, 5, 32, 32) and torch.equal(inp[:, :3], x)
    xs, ys = inp[0, 3], inp[0, 4]
    assert float(xs[:, 0].max()) < -0.9 and float(xs[:, -1].min()) > 0.9  # x: left -> right
    assert float(ys[0].max()) < -0.9 and float(ys[-1].min()) > 0.9  # y: top -> bottom
    assert torch.allclose(xs, -xs.flip(1)) and torch.equal(inp[0, 3:], inp[1, 3:])
    assert coordinate_planes(x.half()).dtype == torch.float16
    # a UNet built without the planes (the first shipped layout) gets the sample unchanged
    plain = ShapesPipeline.build(**TINY_UNET, coord_channels=0)
    assert plain.unet.config.in_channels == 3 and plain.unet_input(x) is x
    with pytest.raises(ValueError, match="coord_channels"):
        ShapesPipeline.build(**TINY_UNET, coord_channels=1)


def test_grounding_targets_point_at_the_colour_and_shape_words(tiny_pipe):
    rng = np.random.default_rng(0)
    scenes = [
        data.render_scene(data.parse_caption(c), rng) for c in ("a red circle below a blue triangle", "a green square")
    ]
    tokens, masks = grounding_targets(scenes, np.array([True, True]))
    names = tiny_pipe.tokenize_words(scenes[0].caption)
    assert [names[int(i)] for i in tokens[0]] == ["red", "circle", "blue", "triangle"]
    assert torch.equal(masks[0, 0], masks[0, 1]) and torch.equal(
        masks[0, 0].bool(), torch.from_numpy(scenes[0].masks[0])
    )
    assert torch.equal(masks[0, 2].bool(), torch.from_numpy(scenes[0].masks[1]))
    assert [tiny_pipe.tokenize_words("a green square")[int(i)] for i in tokens[1, :2]] == ["green", "square"]
    assert tokens[1, 2:].tolist() == [-1, -1] and float(masks[1, 2:].sum()) == 0.0
    dropped, _ = grounding_targets(scenes, np.array([False, True]))  # empty caption: nothing to ground
    assert dropped[0].tolist() == [-1, -1, -1, -1]


def test_grounding_loss_is_the_squared_share_of_attention_outside_the_object():
    masks = torch.zeros(1, 4, 32, 32)
    masks[0, 0, :, :16] = 1.0  # left half
    tokens = torch.tensor([[2, -1, -1, -1]])
    a = torch.full((1, 64, 5), 0.01)  # an 8x8 layer, 5 tokens
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[:, :4] = True
    a[0, inside.flatten(), 2] = 1.0
    a[0, ~inside.flatten(), 2] = 0.0
    assert float(grounding_loss([a], tokens, masks)) == pytest.approx(0.0, abs=1e-6)
    a[0, :, 2] = (~inside.flatten()).float()  # all of it on the right half
    assert float(grounding_loss([a], tokens, masks)) == pytest.approx(1.0)
    a[0, :, 2] = 1.0  # spread evenly: half outside -> 0.25
    a.requires_grad_(True)
    loss = grounding_loss([a, a], tokens, masks)
    assert float(loss.detach()) == pytest.approx(0.25)
    loss.backward()
    assert a.grad is not None and float(a.grad[0, :, 2].abs().sum()) > 0 and float(a.grad[0, :, 0].abs().sum()) == 0
    # no grounded word (all captions dropped): zero, still differentiable
    none = grounding_loss([a], torch.full((1, 4), -1), masks)
    assert float(none.detach()) == 0.0 and none.requires_grad


def test_pixel_grounding_loss_prefers_a_map_that_covers_its_object_to_a_peak_inside_it():
    masks = torch.zeros(1, 4, 32, 32)
    masks[0, 0, 8:24, 8:24] = 1.0  # a 16 px square: 4x4 cells of an 8x8 layer
    tokens = torch.tensor([[2, -1, -1, -1]])
    cells = torch.zeros(8, 8)
    cells[2:6, 2:6] = 1.0
    covering = torch.full((1, 64, 5), 0.01)
    covering[0, :, 2] = cells.flatten()
    peaked = torch.full((1, 64, 5), 0.01)
    peaked[0, :, 2] = 0.0
    peaked[0, 3 * 8 + 3, 2] = 1.0  # one cell at the object's centre: all inside, so the token loss is 0
    assert float(grounding_loss([peaked], tokens, masks)) == pytest.approx(0.0, abs=1e-6)
    assert float(pixel_grounding_loss([covering], tokens, masks)) < 2e-3
    assert float(pixel_grounding_loss([peaked], tokens, masks)) > 1.0  # 15 of 64 cells at ~0 where the mask is 1
    # min-max normalised: scaling or offsetting a map leaves the loss unchanged
    shifted = covering.clone()
    shifted[0, :, 2] = 0.2 + 0.3 * shifted[0, :, 2]
    assert float(pixel_grounding_loss([shifted], tokens, masks)) == pytest.approx(
        float(pixel_grounding_loss([covering], tokens, masks)), abs=1e-6
    )
    peaked.requires_grad_(True)
    loss = pixel_grounding_loss([peaked], tokens, masks)
    loss.backward()
    grad = peaked.grad[0, :, 2].view(8, 8)
    assert float(grad[2, 2]) < 0 and float(peaked.grad[0, :, 0].abs().sum()) == 0  # raise the object's corner
    none = pixel_grounding_loss([peaked], torch.full((1, 4), -1), masks)
    assert float(none.detach()) == 0.0 and none.requires_grad


def test_init_from_starts_a_run_from_a_saved_pipelines_weights(tmp_path):
    torch.manual_seed(1)
    ShapesPipeline.build(**TINY_UNET).save_pretrained(str(tmp_path / "init"))
    saved = ShapesPipeline.from_pretrained(str(tmp_path / "init"))
    args = ["--out", str(tmp_path / "run"), "--batch-size", "2", "--tiny", "--eval-every", "0", "--log-every", "1"]
    args += ["--init-from", str(tmp_path / "init"), "--pixel-weight", "0.1", "--lr", "1e-12"]
    assert train(parse_args(args + ["--steps", "1"]))["steps"] == 1
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert np.isfinite(metrics[0]["pixel"]) and np.isfinite(metrics[0]["ground"])
    # at a negligible lr the run's EMA is still the saved pipeline (a fresh build would differ everywhere)
    last = ShapesPipeline.from_pretrained(str(tmp_path / "run" / "last"))
    for name, value in saved.unet.state_dict().items():
        assert torch.allclose(last.unet.state_dict()[name], value, atol=1e-6), name
    for name, value in saved.text_encoder.state_dict().items():
        assert torch.allclose(last.text_encoder.state_dict()[name], value, atol=1e-6), name
    # --pixel-max-t 0: no timestep is below it, so the pixel loss has nothing to ground
    train(parse_args(args + ["--steps", "1", "--pixel-max-t", "0", "--out", str(tmp_path / "none")]))
    (record,) = [json.loads(line) for line in (tmp_path / "none" / "metrics.jsonl").read_text().splitlines()]
    assert record["pixel"] == 0.0 and record["ground"] > 0


def test_freeze_text_encoder_trains_the_unet_only(tmp_path):
    torch.manual_seed(1)
    ShapesPipeline.build(**TINY_UNET).save_pretrained(str(tmp_path / "init"))
    saved = ShapesPipeline.from_pretrained(str(tmp_path / "init"))
    args = ["--out", str(tmp_path / "run"), "--batch-size", "2", "--tiny", "--eval-every", "0", "--steps", "2"]
    args += ["--init-from", str(tmp_path / "init"), "--pixel-weight", "0.1", "--lr", "1e-2", "--warmup", "1"]
    with pytest.raises(SystemExit, match="role-weight 0"):
        train(parse_args(args + ["--freeze-text-encoder"]))
    train(parse_args(args + ["--freeze-text-encoder", "--role-weight", "0", "--ema-decay", "0"]))
    last = ShapesPipeline.from_pretrained(str(tmp_path / "run" / "last"))
    for name, value in saved.text_encoder.state_dict().items():
        assert torch.equal(last.text_encoder.state_dict()[name], value), name
    moved = [n for n, v in saved.unet.state_dict().items() if not torch.allclose(last.unet.state_dict()[n], v)]
    assert moved  # at this lr the UNet did train


def test_the_teacher_loss_is_the_distance_to_the_starting_unet_on_the_noisy_steps(tmp_path):
    torch.manual_seed(1)
    ShapesPipeline.build(**TINY_UNET).save_pretrained(str(tmp_path / "init"))
    args = ["--out", str(tmp_path / "run"), "--batch-size", "4", "--tiny", "--eval-every", "0", "--log-every", "1"]
    with pytest.raises(SystemExit, match="needs --init-from and --freeze-text-encoder"):
        train(parse_args(args + ["--steps", "1", "--teacher-weight", "1"]))
    args += ["--init-from", str(tmp_path / "init"), "--teacher-weight", "1", "--lr", "1e-2", "--warmup", "1"]
    with pytest.raises(SystemExit, match="needs --init-from and --freeze-text-encoder"):
        train(parse_args(args + ["--steps", "1"]))
    args += ["--freeze-text-encoder", "--role-weight", "0"]
    train(parse_args(args + ["--steps", "3"]))
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # the first step's student is the teacher (0 up to rounding: its attention runs through the grounding
    # processors); once the student moves, the distance is positive
    assert records[0]["teacher"] < 1e-10 and records[-1]["teacher"] > 1e-6
    # no timestep reaches the threshold: no teacher term at all
    train(parse_args(args + ["--steps", "1", "--teacher-min-t", "1000", "--out", str(tmp_path / "none")]))
    (record,) = [json.loads(line) for line in (tmp_path / "none" / "metrics.jsonl").read_text().splitlines()]
    assert "teacher" not in record


def test_grounding_processors_keep_the_unet_output_and_record_every_cross_attention_layer():
    torch.manual_seed(0)
    pipe = ShapesPipeline.build(**TINY_UNET)
    x = pipe.unet_input(torch.randn(2, 3, 32, 32))
    context = pipe.encode_prompt(["a red circle", "a blue square above a green circle"])
    t = torch.tensor([10, 900])
    with torch.no_grad():
        reference = pipe.unet(x, t, encoder_hidden_states=context).sample
        store = install_grounding(pipe.unet)
        grounded = pipe.unet(x, t, encoder_hidden_states=context).sample
    layers = [n for n in pipe.unet.attn_processors if n.endswith("attn2.processor")]
    assert len(store) == len(layers) > 0
    assert torch.allclose(grounded, reference, atol=1e-5)
    for a in store:
        assert a.shape[0] == 2 and a.shape[2] == context.shape[1]
        assert torch.allclose(a.sum(-1), torch.ones_like(a.sum(-1)), atol=1e-5)  # softmax over the tokens


def test_role_targets_say_which_side_each_object_word_goes():
    rng = np.random.default_rng(0)
    captions = ("a red circle to the left of a blue square", "a green square below a yellow triangle", "a red circle")
    scenes = [data.render_scene(data.parse_caption(c), rng) for c in captions]
    index, target = role_targets(scenes, np.array([True, True, True]))
    assert index.tolist() == [[0, 2], [0, 3], [0, 9], [0, 10], [1, 2], [1, 3], [1, 6], [1, 7]]
    assert target.tolist() == [[-1, 0], [-1, 0], [1, 0], [1, 0], [0, 1], [0, 1], [0, -1], [0, -1]]
    # the targets agree with the rendered scene: the first object's centroid is on the target's side
    for b in (0, 1):
        first, second = (np.argwhere(m).mean(0)[::-1] for m in scenes[b].masks)  # (x, y)
        assert np.all(np.sign(first - second)[target[4 * b].numpy() != 0] == target[4 * b][target[4 * b] != 0].numpy())
    index, target = role_targets(scenes, np.array([False, True, True]))  # a dropped caption has no roles
    assert index[:, 0].tolist() == [1, 1, 1, 1] and target.shape == (4, 2)
    empty_index, empty_target = role_targets(scenes[2:], np.array([True]))
    assert empty_index.shape == (0, 2) and empty_target.shape == (0, 2)


def test_role_loss_teaches_the_text_encoder_sides_that_hold_for_held_out_captions():
    # the XOR of sentence position and relation word: learned from training captions in ~100 steps
    torch.manual_seed(0)
    pipe = ShapesPipeline.build()  # the shipped text encoder's size (width 128, 3 layers)
    head = torch.nn.Linear(pipe.text_encoder.config.hidden_size, 2)
    params = [*pipe.text_encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=8e-4)
    rng = np.random.default_rng(0)
    for _ in range(100):
        specs = [data.TRAIN_TWO_OBJECT_SPECS[i] for i in rng.integers(len(data.TRAIN_TWO_OBJECT_SPECS), size=16)]
        scenes = [data.render_scene(s, rng) for s in specs]
        context = pipe.encode_prompt([s.caption for s in scenes])
        loss = role_loss(head, context, *role_targets(scenes, np.ones(16, dtype=bool)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    held = [data.render_scene(s, rng) for s in data.HELD_OUT_SPECS]
    index, target = role_targets(held, np.ones(len(held), dtype=bool))
    with torch.no_grad():
        predicted = head(pipe.encode_prompt([s.caption for s in held])[index[:, 0], index[:, 1]])
    on_axis = target != 0
    assert float((predicted[on_axis].sign() == target[on_axis]).float().mean()) >= 0.95
    no_words = role_loss(head, context, torch.zeros((0, 2), dtype=torch.long), torch.zeros((0, 2)))
    assert float(no_words.detach()) == 0.0 and no_words.requires_grad
