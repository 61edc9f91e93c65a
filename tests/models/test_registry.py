"""The classifier registry: the embedded model, hub ids (tiny offline ViT), extras, ViT token grids."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from glimpse.devices import resolve_device
from glimpse.images import sample_images
from glimpse.token_grid import TokenGrid, grid_to_tokens, tokens_to_grid
from models import hub
from models.registry import DEFAULT_CLASSIFIER, LOADERS, ClassifierBundle, ModelLoadError, load_classifier
from tests.tiny_models import save_tiny_vit


@pytest.fixture(scope="module")
def lite0() -> ClassifierBundle:
    return load_classifier(DEFAULT_CLASSIFIER, device="cpu")


@pytest.fixture(scope="module")
def samples() -> dict[str, np.ndarray]:
    return sample_images()


LABELS = {0: "apple", 1: "banana", 2: "cherry"}


@pytest.fixture(scope="module")
def tiny_vit_dir(tmp_path_factory):
    return save_tiny_vit(tmp_path_factory.mktemp("tiny_vit"), LABELS)


# -- embedded EfficientNet-Lite0 ------------------------------------------------------------------


def test_embedded_classifies_the_samples(lite0, samples):
    top_cat = lite0.predict(samples["chelsea"], top=1)[0][1]
    assert top_cat in {"tabby, tabby cat", "tiger cat", "Egyptian cat"}
    idx, label, prob = lite0.predict(samples["coffee"], top=1)[0]
    assert label == "espresso" and prob > 0.3


def test_embedded_scaling_is_pixel_minus_127_over_128(lite0):
    img = np.array([[[0, 127, 255]]], dtype=np.uint8).repeat(224, 0).repeat(224, 1)
    x = lite0.preprocess(img)
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), [-127 / 128, 0.0, 128 / 128], atol=1e-6)
    lo, hi = lite0.input_range
    assert lo == pytest.approx(-127 / 128) and hi == pytest.approx(1.0)


def test_bundle_is_frozen_and_in_eval_mode(lite0):
    assert not lite0.model.training
    assert all(not p.requires_grad for p in lite0.model.parameters())
    assert lite0.kind == "cnn" and lite0.token_grid is None
    assert len(lite0.labels) == 1000 and lite0.input_size == (224, 224)
    assert lite0.target_layers[0] == "head_act"
    for path in lite0.target_layers:
        lite0.module(path)  # every suggested layer exists
    with pytest.raises(ValueError, match="layer: no module"):
        lite0.module("no.such.layer")
    with pytest.raises(dataclasses_frozen_error()):
        lite0.model_id = "other"


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


def test_predict_returns_sorted_probabilities(lite0, samples):
    preds = lite0.predict(samples["astronaut"], top=5)
    probs = [p for _, _, p in preds]
    assert len(preds) == 5 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_preprocess_batch_rejects_non_uint8_rgb(lite0):
    with pytest.raises(ValueError, match="image: expected uint8"):
        lite0.preprocess(np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="image: expected uint8"):
        lite0.preprocess(np.zeros((8, 8, 3), dtype=np.float32))
    assert lite0.preprocess_batch([np.zeros((10, 20, 3), np.uint8)] * 2).shape == (2, 3, 224, 224)


def test_label_search(lite0):
    assert lite0.label_index("espresso") == lite0.labels.index("espresso")
    assert lite0.label_index("tabby") == lite0.labels.index("tabby, tabby cat")  # exact comma-separated part
    assert lite0.label_index("TIGER CAT") == 282
    assert lite0.label_index(281) == 281 and lite0.label_index("281") == 281
    with pytest.raises(ValueError, match="no class matches"):
        lite0.label_index("zzzz-not-a-class")
    with pytest.raises(ValueError, match="be more specific"):
        lite0.label_index("dog")
    with pytest.raises(ValueError, match="outside 0..999"):
        lite0.label_index(1000)


def test_unknown_id_lists_the_known_prefixes():
    with pytest.raises(ModelLoadError, match="unknown id 'nope'.*efficientnet-lite0.*hf:"):
        load_classifier("nope", device="cpu")


def test_hub_prefixes_are_registered():
    assert {"hf:", "torchvision:", "timm:", DEFAULT_CLASSIFIER} <= set(LOADERS)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device: CUDA is not available"):
            resolve_device("cuda")


# -- Hugging Face ---------------------------------------------------------------------------------


def test_hf_tiny_vit_from_a_folder(tiny_vit_dir):
    bundle = load_classifier(f"hf:{tiny_vit_dir}", device="cpu")
    assert bundle.labels == ("apple", "banana", "cherry")
    assert bundle.kind == "vit" and bundle.token_grid == TokenGrid(prefix=1, height=4, width=4)
    assert bundle.input_size == (32, 32)
    # No preprocessor_config.json: ViT's default image processor scales to [-1, 1].
    assert bundle.mean == (0.5, 0.5, 0.5) and bundle.std == (0.5, 0.5, 0.5)
    assert not bundle.model.training and all(not p.requires_grad for p in bundle.model.parameters())
    x = bundle.preprocess_batch([np.zeros((40, 50, 3), np.uint8), np.full((20, 20, 3), 200, np.uint8)])
    logits = bundle.model(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 3)  # ModelOutput unwrapped
    assert bundle.target_layers[0].endswith("layers.1.layernorm_before")
    preds = bundle.predict(np.zeros((40, 50, 3), np.uint8), top=3)
    assert sorted(label for _, label, _ in preds) == ["apple", "banana", "cherry"]


def test_hf_vit_target_layer_reshapes_to_the_grid(tiny_vit_dir):
    bundle = load_classifier(f"hf:{tiny_vit_dir}", device="cpu")
    captured = {}
    handle = bundle.module(bundle.target_layers[0]).register_forward_hook(lambda m, i, o: captured.update(out=o))
    try:
        bundle.model(bundle.preprocess(np.zeros((32, 32, 3), np.uint8)))
    finally:
        handle.remove()
    grid = tokens_to_grid(captured["out"], bundle.token_grid)
    assert grid.shape == (1, 32, 4, 4)


def test_hf_preprocessor_config_is_honoured(tmp_path, tiny_vit_dir):
    import shutil

    folder = tmp_path / "with_processor"
    shutil.copytree(tiny_vit_dir, folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.4, 0.5, 0.6], "image_std": [0.2, 0.25, 0.3], "size": {"height": 32, "width": 32}})
    )
    bundle = load_classifier(f"hf:{folder}", device="cpu")
    assert bundle.mean == (0.4, 0.5, 0.6) and bundle.std == (0.2, 0.25, 0.3)


def test_hf_register_tokens_are_prefix(tmp_path):
    from tests.tiny_models import vit_families

    cls, cfg = vit_families({0: "yes", 1: "no"})["dinov2"]
    cls(cfg).save_pretrained(tmp_path)
    bundle = load_classifier(f"hf:{tmp_path}", device="cpu")
    assert bundle.kind == "vit" and bundle.token_grid == TokenGrid(prefix=1, height=4, width=4)


def test_hf_offline_hub_id_says_offline(monkeypatch):
    monkeypatch.setattr(hub, "_hub_reachable", lambda timeout=3.0: False)  # no network probe in tests
    with pytest.raises(ModelLoadError, match="cannot reach the Hugging Face hub.*offline"):
        load_classifier("hf:glimpse-tests/definitely-not-cached-vit", device="cpu")


def test_hf_bad_references():
    with pytest.raises(ModelLoadError, match="needs a repo id or a folder"):
        load_classifier("hf:", device="cpu")
    with pytest.raises(ModelLoadError, match="not a folder"):
        load_classifier("hf:./no/such/folder", device="cpu")


def test_hf_folder_without_a_classifier(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    with pytest.raises(ModelLoadError, match="not an image classifier|cannot load"):
        load_classifier(f"hf:{tmp_path}", device="cpu")


# -- torchvision / timm extras --------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["torchvision", "timm"])
def test_missing_extra_names_the_extras_file(prefix):
    if hub.extra_available(prefix):
        pytest.skip(f"{prefix} imports here; the missing-extra message cannot be seen")
    with pytest.raises(ModelLoadError, match=f"{prefix} is not usable here.*requirements-extras.txt"):
        load_classifier(f"{prefix}:resnet18", device="cpu")


def test_broken_extra_import_is_a_model_load_error(monkeypatch):
    """``import torchvision`` beside a mismatched torch raises RuntimeError, not ImportError."""

    def broken(name):
        raise RuntimeError("operator torchvision::nms does not exist")

    monkeypatch.setattr(hub.importlib, "import_module", broken)
    with pytest.raises(ModelLoadError, match="RuntimeError: operator torchvision::nms.*requirements-extras"):
        hub.import_extra("torchvision")
    assert not hub.extra_available("torchvision")


# -- layer discovery and token grids --------------------------------------------------------------


def test_cnn_target_layers_pick_the_deepest_module_per_resolution():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    )
    trace = hub._trace_outputs(net, (16, 16), torch.device("cpu"))
    assert hub.cnn_target_layers(trace) == ("3", "1")  # 8×8 before 16×16; the 1×1 pool is skipped


def test_tokens_to_grid_round_trip():
    grid = TokenGrid(prefix=2, height=3, width=4)
    tokens = torch.randn(2, 2 + 12, 5)
    maps = tokens_to_grid(tokens, grid)
    assert maps.shape == (2, 5, 3, 4)
    # Row-major: token prefix + r*W + c lands at (r, c).
    assert torch.equal(maps[:, :, 1, 2], tokens[:, 2 + 1 * 4 + 2, :])
    back = grid_to_tokens(maps, grid)
    assert torch.equal(back[:, 2:], tokens[:, 2:]) and torch.all(back[:, :2] == 0)


def test_tokens_to_grid_checks_the_count():
    with pytest.raises(ValueError, match="do not match the grid"):
        tokens_to_grid(torch.zeros(1, 10, 3), TokenGrid(prefix=1, height=2, width=2))
    with pytest.raises(ValueError, match="expected \\(B, N, C\\)"):
        tokens_to_grid(torch.zeros(10, 3), TokenGrid(prefix=1, height=3, width=3))


def test_tokens_to_grid_keeps_gradients():
    tokens = torch.randn(1, 5, 2, requires_grad=True)
    tokens_to_grid(tokens, TokenGrid(1, 2, 2)).sum().backward()
    assert torch.all(tokens.grad[:, 0] == 0) and torch.all(tokens.grad[:, 1:] == 1)
