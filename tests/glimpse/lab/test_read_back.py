"""A written file keeps its claim: each kind of file whose value is a claim about the model, read back the way
a user would (decoded by glimpse.images, through the model's preprocessing), gives the number that was reported.

Kinds: the level-set traversal's end point and frames (PNG and float NPZ), a feature visualisation's PNG, a
run bundle. (A saliency NPZ re-read gives the same maps: tests/glimpse/saliency and tests/glimpse/test_run_bundle.py.)
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from glimpse.images import load_image, png_bytes, sample_images
from glimpse.lab import Objective, level_set_traversal, visualize
from glimpse.lab.blindspot import read_traversal_npz, rounding_note, traversal_npz_bytes
from glimpse.lab.common import ModelInput, to_tensor, written_probabilities

PLAIN = ModelInput((8, 8), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


class Steep(nn.Module):
    """Two classes with logits (k (w.x) + b, 0): a flat level set, but so steep that rounding a point to 8 bits
    (a shift of up to half a level per pixel) moves its logit by about half a unit."""

    def __init__(self, k: float = 100.0, b: float = 0.0):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.w = nn.Parameter(torch.randn((3, 8, 8), generator=g) * 0.3, requires_grad=False)
        self.k, self.b = k, b

    def forward(self, x):
        z = self.k * (x * self.w).flatten(1).sum(1) + self.b
        return torch.stack([z, torch.zeros_like(z)], dim=1)


def plain_preprocess(image: np.ndarray) -> torch.Tensor:
    """The tiny models' own preprocessing: 8-bit RGB to [0, 1] at 8 x 8, no normalisation."""
    return PLAIN.normalise(to_tensor(image, PLAIN.size, torch.device("cpu")))


def mid_images() -> tuple[np.ndarray, np.ndarray]:
    """Source and target within 64..192, so the walk never touches the [0, 1] clamp."""
    rng = np.random.default_rng(0)
    return tuple(rng.integers(64, 192, (8, 8, 3), dtype=np.uint8) for _ in range(2))


def steep_model_starting_at(p: float) -> Steep:
    """A Steep model whose bias puts the traversal's (noisy, float) start at confidence ``p``."""
    src, tgt = mid_images()
    model = Steep()
    start = level_set_traversal(model, src, tgt, PLAIN, source_class=0, steps=1, adv_step=0.0).frame_values[0]
    with torch.no_grad():
        z = float(model(torch.from_numpy(start).permute(2, 0, 1)[None])[0, 0])
    return Steep(b=float(np.log(p / (1 - p))) - z)


def test_each_accepted_step_keeps_its_8_bit_rounding_in_the_level_set():
    model = steep_model_starting_at(0.7)
    src, tgt = mid_images()
    kw = dict(source_class=0, steps=80, step_size=0.05, pthresh=0.1, adv_step=0.0)
    paper = level_set_traversal(model, src, tgt, PLAIN, check_8bit=False, **kw)
    robust = level_set_traversal(model, src, tgt, PLAIN, **kw)
    assert abs(paper.start_confidence - 0.7) < 1e-4 and abs(robust.start_confidence - 0.7) < 1e-4
    # the paper's rule walks the flat level set in float; rounded to 8 bits, points fall off it
    assert paper.accepted.all() and np.all(paper.start_confidence - paper.confidence < 0.1)
    assert np.sum(paper.start_confidence - paper.confidence_8bit >= 0.1) >= 3
    # the robust rule refuses those steps: from its first accepted step on, every rounded point is inside.
    # (Without the correction term a refused step is proposed again unchanged, so this walk stops at the
    # first one, as the paper's rule stops at the edge of the level set.)
    first = int(np.argmax(robust.accepted)) + 1
    assert robust.accepted.sum() >= 3 and not robust.accepted.all()
    assert np.all(robust.start_confidence - robust.confidence_8bit[first:] < 0.1)
    assert np.all(robust.start_confidence - robust.confidence[first:] < 0.1)
    assert robust.distances["l2"] < robust.distances["source_l2"]  # it walked towards the target
    assert robust.end_confidence_8bit == robust.confidence_8bit[-1] and robust.params["check_8bit"] is True


def test_the_written_end_png_and_npz_reproduce_the_reported_confidences(tmp_path):
    model = steep_model_starting_at(0.7)
    src, tgt = mid_images()
    tr = level_set_traversal(model, src, tgt, PLAIN, source_class=0, steps=40, step_size=0.05, pthresh=0.05,
                             adv_step=0.0, frames=4)  # fmt: skip
    # the PNG at the model's input size holds the 8-bit point: a reader gets end_confidence_8bit
    (tmp_path / "end.png").write_bytes(png_bytes(tr.end))
    assert Image.open(tmp_path / "end.png").size == (8, 8)
    back = written_probabilities(str(tmp_path / "end.png"), model, plain_preprocess, PLAIN)
    assert back[0] == pytest.approx(tr.end_confidence_8bit, abs=1e-6)
    # the float NPZ holds the float point: the model gives it end_confidence
    arrays, meta = read_traversal_npz(traversal_npz_bytes(tr))
    end = torch.from_numpy(arrays["end"]).permute(2, 0, 1)[None]
    with torch.no_grad():
        p_end = float(torch.softmax(model(end), 1)[0, 0])
    assert p_end == pytest.approx(tr.end_confidence, abs=1e-6)
    assert meta["end_confidence"] == tr.end_confidence and meta["method"] == "level-set-traversal"
    assert meta["end_confidence_8bit"] == tr.end_confidence_8bit and meta["versions"]["numpy"] == np.__version__
    # each frame: its PNG gives the 8-bit confidence at its step, its float copy the float confidence
    steps = arrays["frame_steps"].tolist()
    assert steps == list(tr.frame_steps) and steps[-1] == 40
    for (step, frame), values in zip(tr.frames, arrays["frames"]):
        p_png = written_probabilities(png_bytes(frame), model, plain_preprocess, PLAIN)[0]
        with torch.no_grad():
            p_float = float(torch.softmax(model(torch.from_numpy(values).permute(2, 0, 1)[None]), 1)[0, 0])
        assert p_png == pytest.approx(tr.confidence_8bit[step], abs=1e-6)
        assert p_float == pytest.approx(tr.confidence[step], abs=1e-6)
    np.testing.assert_array_equal(arrays["confidence"], tr.confidence)
    np.testing.assert_array_equal(arrays["accepted"], tr.accepted)


def test_the_rounding_note_names_a_move_and_stays_silent_without_one():
    model = steep_model_starting_at(0.7)
    src, tgt = mid_images()
    tr = level_set_traversal(model, src, tgt, PLAIN, source_class=0, steps=5, adv_step=0.0, pthresh=0.05)
    assert rounding_note(tr, tr.end_confidence) is None
    note = rounding_note(tr, tr.end_confidence - 0.2)
    assert "8-bit rounding" in note and f"{tr.end_confidence:.4f}" in note and "outside the level set" in note


def test_a_feature_visualisation_png_re_read_gives_its_reported_probability(tmp_path):
    # the steep model's probability moves with sub-8-bit changes: scoring the float image would not reproduce
    # the bias does not change the logit's gradient, so the image is the same: set it to land at logit 0.5
    first = visualize(Steep(), Objective("class", 0), PLAIN, steps=12, lr=0.05, seed=0)
    model = Steep(b=0.5 - first.score)
    vis = visualize(model, Objective("class", 0), PLAIN, steps=12, lr=0.05, seed=0)
    assert np.array_equal(vis.image, first.image)
    (tmp_path / "vis.png").write_bytes(png_bytes(vis.image))
    back = written_probabilities(str(tmp_path / "vis.png"), model, plain_preprocess, PLAIN)
    assert 0.01 < vis.probability < 0.99  # not saturated: a mismatch would show
    assert back[0] == pytest.approx(vis.probability, abs=1e-6)
    with torch.no_grad():
        logit = float(model(plain_preprocess(load_image(tmp_path / "vis.png")))[0, 0])
    assert logit == pytest.approx(vis.score, abs=1e-4)


def test_the_visualize_command_reports_what_classify_gives_its_png(tmp_path, capsys):
    from glimpse.cli import main

    assert main(["visualize", "--model", "shapes-classifier", "--class", "red circle", "--steps", "8",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    row = json.loads(capsys.readouterr().out)["images"][0]
    assert main(["classify", str(tmp_path / row["file"]), "--model", "shapes-classifier", "--json",
                 "--top", "100"]) == 0  # fmt: skip
    top = {t["label"]: t["probability"] for t in json.loads(capsys.readouterr().out)["top"]}
    assert row["probability"] == pytest.approx(top["red circle"], abs=1e-6)
    assert row["read_back_probability"] == pytest.approx(top["red circle"], abs=1e-9)


def test_the_blindspot_command_writes_files_that_reproduce_its_json(tmp_path, capsys):
    from glimpse.cli import main
    from models.lab import model_input
    from models.registry import load_classifier

    s = sample_images()
    src, tgt = tmp_path / "src.png", tmp_path / "tgt.png"
    Image.fromarray(s["chelsea"]).save(src)
    Image.fromarray(s["coffee"]).save(tgt)
    out = tmp_path / "bs"
    assert main(["blindspot", str(src), str(tgt), "--steps", "3", "--frames", "2", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    bundle = load_classifier(summary["model"], device="cpu")
    h, w = bundle.input_size
    assert Image.open(out / "end.png").size == (w, h) and Image.open(out / "end-view.png").size == (451, 300)
    assert [f["file"] for f in summary["frames"]] == ["frame-000.png", "frame-003.png"]
    # classify on the written end image: the JSON's label and number
    assert main(["classify", str(out / "end.png"), "--top", "1", "--json"]) == 0
    (top,) = json.loads(capsys.readouterr().out)["top"]
    assert top["label"] == summary["written_end_label"]
    assert top["probability"] == pytest.approx(summary["written_end_top_probability"], abs=1e-9)
    probs = {i: p for i, _, p in bundle.predict(load_image(out / "end.png"), top=bundle.num_classes)}
    assert probs[summary["source_class"]] == pytest.approx(summary["written_end_confidence"], abs=1e-9)
    assert summary["written_end_confidence"] == pytest.approx(summary["end_confidence_8bit"], abs=1e-4)
    # each frame's PNG gives its 8-bit confidence; the NPZ's float end gives the float confidence
    for frame in summary["frames"]:
        p = {i: q for i, _, q in bundle.predict(load_image(out / frame["file"]), top=bundle.num_classes)}
        assert p[summary["source_class"]] == pytest.approx(frame["confidence_8bit"], abs=1e-4)
    arrays, meta = read_traversal_npz(str(out / "traversal.npz"))
    inp = model_input(bundle)
    x = torch.from_numpy(arrays["end"]).permute(2, 0, 1)[None].contiguous()
    with torch.no_grad():
        p_float = float(inp.probabilities(bundle.model(inp.normalise(x)))[0, summary["source_class"]])
    assert p_float == pytest.approx(summary["end_confidence"], abs=1e-4)
    assert meta["size"] == [h, w] and meta["steps"] == 3
