"""The model lab on analytic models and on the embedded classifiers: the issue's checks as tests."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from glimpse.images import sample_images
from glimpse.lab import Objective, level_set_traversal, multifaceted, top_examples, triangle_confidence, visualize
from glimpse.lab.blindspot import project_out
from glimpse.lab.common import ModelInput
from glimpse.lab.featurevis import FourierImage


class Logistic(nn.Module):
    """Two classes with logits (w.x + b, 0): an analytic level set."""

    def __init__(self, shape=(3, 8, 8), seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(shape, generator=g) * 0.3, requires_grad=False)
        self.b = nn.Parameter(torch.tensor(0.5), requires_grad=False)

    def forward(self, x):
        z = (x * self.w).flatten(1).sum(1) + self.b
        return torch.stack([z, torch.zeros_like(z)], dim=1)


PLAIN = ModelInput((8, 8), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


class Quadratic(nn.Module):
    """Two classes with logits (sum(w * x^2) + b, 0): a curved level set."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn((3, 8, 8), generator=torch.Generator().manual_seed(5), dtype=torch.float64),
                              requires_grad=False)  # fmt: skip

    def forward(self, x):
        z = (self.w * x * x).flatten(1).sum(1) - 1.0
        return torch.stack([z, torch.zeros_like(z)], dim=1)


@pytest.mark.parametrize("model", [Logistic().double(), Quadratic()], ids=["linear", "quadratic"])
def test_the_projected_step_leaves_the_confidence_unchanged_to_first_order(model):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 8, 8, generator=gen, dtype=torch.float64) * 0.5 + 0.25
    target = torch.rand(1, 3, 8, 8, generator=gen, dtype=torch.float64)
    xg = x.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(xg), torch.tensor([0]))
    (grad,) = torch.autograd.grad(loss, [xg])
    step = project_out(target - x, grad)
    assert abs(float((step * grad).sum())) < 1e-12 * float(grad.norm() * step.norm())

    def change(direction, e):
        return abs(float(torch.softmax(model(x + e * direction), 1)[0, 0] - torch.softmax(model(x), 1)[0, 0]))

    # the raw step changes the confidence to first order (10x smaller step, 10x smaller change); the projected
    # one only to second order (100x smaller), and not at all on a linear model's flat level set
    raw = change(target - x, 1e-3) / change(target - x, 1e-4)
    assert 9 < raw < 11
    small, smaller = change(step, 1e-3), change(step, 1e-4)
    assert smaller < 1e-12 if isinstance(model, Logistic) else 90 < small / smaller < 110


def test_traversal_on_the_analytic_model_ends_at_the_target_with_the_confidence_held():
    model = Logistic(seed=3)
    rng = np.random.default_rng(0)
    src, tgt = (rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(2))
    # without the correction term the walk stays on the (flat) level set, up to the clamp to [0, 1]
    tr = level_set_traversal(model, src, tgt, PLAIN, source_class=0, steps=300, step_size=0.05, pthresh=0.05,
                             adv_step=0.0)  # fmt: skip
    assert abs(tr.end_confidence - tr.start_confidence) < 0.05
    assert tr.distances["l2"] < 0.2 * tr.distances["source_l2"]
    assert tr.confidence.shape == (301,) and tr.accepted.dtype == bool and tr.frames[-1][0] == 300
    # the published correction only pushes the confidence up; steps that drop it by pthresh are refused
    pushed = level_set_traversal(model, src, tgt, PLAIN, source_class=0, steps=100, step_size=0.05, pthresh=0.05)
    assert np.all(pushed.confidence >= pushed.start_confidence - 0.05)


def test_the_fourier_image_encodes_a_start_image_exactly():
    gen = torch.Generator().manual_seed(0)
    param = FourierImage((24, 32), generator=gen)
    img = torch.from_numpy(sample_images()["coffee"][:24, :32]).permute(2, 0, 1)[None].float() / 255
    param.encode(img)
    with torch.no_grad():
        back = param()
    assert float((back - img.clamp(1 / 512, 1 - 1 / 512)).abs().max()) < 1e-4


def test_objectives_parse_and_bad_layers_are_named():
    assert Objective.parse("class:7") == Objective("class", 7)
    assert Objective.parse("channel:blocks.5.conv:12") == Objective("channel", 12, "blocks.5.conv")
    with pytest.raises(ValueError, match="objective"):
        Objective.parse("neuron:3")
    with pytest.raises(ValueError, match="no module 'nope'"):
        visualize(Logistic(), Objective("channel", 0, "nope"), PLAIN, steps=1)
    with pytest.raises(ValueError, match="out of range"):
        visualize(Logistic(), Objective("class", 5), PLAIN, steps=1)


class RedDetector(nn.Module):
    """Channel 0 of ``conv`` responds to red (r - g - b), channel 1 to brightness."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]).view(2, 3, 1, 1))
        self.head = nn.Linear(2, 2)

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)))


def test_top_examples_find_the_red_patch():
    images = [np.full((40, 60, 3), 200, np.uint8) for _ in range(3)]
    images[1][10:20, 40:50] = (255, 0, 0)  # a red square, right of centre
    inp = ModelInput((40, 60), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    found = top_examples(RedDetector(), "conv", 0, images, inp, top=2, patch=0.25)
    assert [e.index for e in found][0] == 1 and found[0].score > found[1].score
    top_, left, bottom, right = found[0].box
    assert top_ <= 15 <= bottom and left <= 45 <= right and found[0].patch.shape == (10, 15, 3)


@pytest.fixture(scope="module")
def lite0():
    from models.lab import model_input
    from models.registry import load_classifier

    bundle = load_classifier("efficientnet-lite0", device="cpu")
    return bundle, model_input(bundle)


def test_a_class_visualisation_of_the_embedded_classifier_passes_0_9(lite0):
    bundle, inp = lite0
    small = ModelInput((128, 128), inp.mean, inp.std)
    seen = []
    vis = visualize(
        bundle.model, Objective("class", 285), small, steps=48, seed=0, progress=lambda d, t: seen.append(d)
    )
    assert vis.probability > 0.9, vis.probability
    assert seen[-1] == 48 and vis.snapshots[-1][0] == 48 and vis.image.shape == (128, 128, 3)
    again = visualize(bundle.model, Objective("class", 285), small, steps=2, seed=0)
    assert np.array_equal(again.image, visualize(bundle.model, Objective("class", 285), small, steps=2, seed=0).image)
    assert all(
        not p.requires_grad or p.grad is None for p in bundle.model.parameters()
    )  # the shared model is untouched


@pytest.mark.slow
def test_facets_of_one_class_differ(lite0):
    from models.lab import class_images, late_layer

    bundle, inp = lite0
    small = ModelInput((96, 96), inp.mean, inp.std)
    pool = class_images(bundle, 285, count=12)
    facets = multifaceted(bundle.model, 285, pool, small, layer=late_layer(bundle), facets=3, steps=24)
    corr = facets.correlations()
    assert corr.shape == (3, 3) and np.max(corr[~np.eye(3, dtype=bool)]) < 0.9
    assert sorted(i for m in facets.members for i in m) == list(range(12))
    assert all(v.probability > 0.9 for v in facets.visualizations)


def test_a_traversal_between_two_samples_ends_close_to_the_target(lite0):
    bundle, inp = lite0
    small = ModelInput((160, 160), inp.mean, inp.std)
    s = sample_images()
    tr = level_set_traversal(bundle.model, s["chelsea"], s["coffee"], small, steps=40, step_size=0.08, pthresh=0.2)
    assert tr.distances["ssim"] >= 0.8, tr.summary()
    assert tr.end_confidence >= tr.start_confidence - 0.2
    assert int(np.argmax(tr.confidence)) >= 0 and tr.source_class == 285 and tr.target_class != 285
    coords, conf = triangle_confidence(bundle.model, s["chelsea"], s["coffee"], tr.end, small, 285, resolution=4)
    corners = {tuple(c): p for c, p in zip(coords.round(6).tolist(), conf)}
    assert corners[(0.0, 1.0)] >= tr.start_confidence - 0.25  # the end point keeps the source class
    assert corners[(1.0, 0.0)] < 0.5  # the target itself does not


def test_the_commands_write_their_files_and_json(tmp_path, capsys):
    from PIL import Image

    from glimpse.cli import main

    assert main(["visualize", "--model", "shapes-classifier", "--class", "red circle", "--facets", "2", "--steps",
                 "16", "--out", str(tmp_path / "vis")]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["label"] == "red circle" and len(summary["images"]) == 2
    assert all((tmp_path / "vis" / row["file"]).exists() and 0 <= row["probability"] <= 1 for row in summary["images"])
    src, tgt = tmp_path / "src.png", tmp_path / "tgt.png"
    s = sample_images()
    Image.fromarray(s["chelsea"][:120, :150]).save(src)
    Image.fromarray(s["coffee"]).save(tgt)
    assert main(["blindspot", str(src), str(tgt), "--steps", "4", "--frames", "3", "--out", str(tmp_path / "bs")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"start_confidence", "end_confidence", "l2", "linf", "ssim"} <= set(summary)
    assert Image.open(tmp_path / "bs" / "end.png").size == (224, 224)  # the model's input (test_read_back.py)
    assert Image.open(tmp_path / "bs" / "end-view.png").size == (150, 120)  # the view at the source's size
    assert len(list((tmp_path / "bs").glob("frame-*.png"))) == 3
    assert main(["blindspot", str(src), str(tmp_path / "missing.png"), "--out", str(tmp_path / "x")]) == 2
