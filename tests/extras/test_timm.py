"""The ``timm:`` loader and the transformer methods on a real timm ViT (issue 27), offline.

A tiny ``vit_tiny_patch16_224`` (32×32 input, 8-px patches, 2 blocks, 5 classes, seeded weights) is saved with
``timm.models.save_for_hf`` and loaded by id, ``timm:<folder>``, through ``models.registry.load_classifier``. A
Hugging Face ``ViTForImageClassification`` holding the same weights (timm's fused qkv split into query, key and
value) is loaded by Glimpse's ``hf:`` loader; every method that reads a ViT, and the gradient methods, must give
the same map on both, since they are the same function of the image.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.extras.support import need

timm = need("timm")

from glimpse.saliency import REGISTRY, explain  # noqa: E402
from glimpse.token_grid import TokenGrid  # noqa: E402
from models.hub import load_hf  # noqa: E402
from models.registry import ModelLoadError, load_classifier  # noqa: E402

LABELS = ["apple", "banana", "cherry", "date palm", "elderberry"]
#: the tiny ViT: vit_tiny's layout at a size the tests run in milliseconds
ARGS = dict(img_size=32, patch_size=8, depth=2, embed_dim=32, num_heads=2, mlp_ratio=2.0)
#: methods that read the ViT's attention, as registered (chefer_lrp once it exists), then the gradient ones
VIT_METHODS = [n for n in ("rollout", "chefer", "chefer_lrp", "legrad") if n in REGISTRY]
SHARED_METHODS = ["gradient", "input_x_gradient", "gradcam"]


def _seeded(net: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> torch.nn.Module:
    """Every parameter from N(0, scale²): timm's own init (std 0.02) leaves the attention nearly uniform, and maps
    of a uniform attention agree between any two models."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return net.eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(the timm module, its folder): ``timm.create_model`` with no download, saved as timm saves for the hub."""
    net = _seeded(timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=len(LABELS), **ARGS))
    folder = tmp_path_factory.mktemp("timm_vit")
    timm.models.save_for_hf(net, folder, model_config={"label_names": LABELS})  # records ARGS itself
    return net, folder


@pytest.fixture(scope="module")
def bundle(tiny):
    return load_classifier(f"timm:{tiny[1]}", device="cpu")


def _hf_twin(net: torch.nn.Module, folder) -> None:
    """Save a ``ViTForImageClassification`` with ``net``'s weights to ``folder`` (the mapping of transformers'
    own timm conversion script: qkv rows are query, key, value in that order; ``strict`` loading names any key
    a later transformers renames)."""
    from transformers import ViTConfig, ViTForImageClassification

    c = ARGS["embed_dim"]
    config = ViTConfig(
        image_size=ARGS["img_size"],
        patch_size=ARGS["patch_size"],
        hidden_size=c,
        num_hidden_layers=ARGS["depth"],
        num_attention_heads=ARGS["num_heads"],
        intermediate_size=int(c * ARGS["mlp_ratio"]),
        hidden_act="gelu",
        layer_norm_eps=1e-6,  # timm's ViT norms; transformers' default is 1e-12
        qkv_bias=True,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)},
    )
    t = net.state_dict()
    s = {
        "vit.embeddings.cls_token": t["cls_token"],
        "vit.embeddings.position_embeddings": t["pos_embed"],
        "vit.embeddings.patch_embeddings.projection.weight": t["patch_embed.proj.weight"],
        "vit.embeddings.patch_embeddings.projection.bias": t["patch_embed.proj.bias"],
        "vit.layernorm.weight": t["norm.weight"],
        "vit.layernorm.bias": t["norm.bias"],
        "classifier.weight": t["head.weight"],
        "classifier.bias": t["head.bias"],
    }
    for i in range(ARGS["depth"]):
        hf, tm = f"vit.layers.{i}.", f"blocks.{i}."  # transformers 5's names
        for kind in ("weight", "bias"):
            q, k, v = t[f"{tm}attn.qkv.{kind}"].chunk(3)
            s[f"{hf}attention.q_proj.{kind}"] = q
            s[f"{hf}attention.k_proj.{kind}"] = k
            s[f"{hf}attention.v_proj.{kind}"] = v
            s[f"{hf}attention.o_proj.{kind}"] = t[f"{tm}attn.proj.{kind}"]
            s[f"{hf}layernorm_before.{kind}"] = t[f"{tm}norm1.{kind}"]
            s[f"{hf}layernorm_after.{kind}"] = t[f"{tm}norm2.{kind}"]
            s[f"{hf}mlp.fc1.{kind}"] = t[f"{tm}mlp.fc1.{kind}"]
            s[f"{hf}mlp.fc2.{kind}"] = t[f"{tm}mlp.fc2.{kind}"]
    model = ViTForImageClassification(config)
    model.load_state_dict(s, strict=True)
    model.save_pretrained(folder)
    mean, std = net.pretrained_cfg["mean"], net.pretrained_cfg["std"]
    processor = {"image_mean": list(mean), "image_std": list(std), "size": {"height": 32, "width": 32}}
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))


@pytest.fixture(scope="module")
def twin(tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_twin")
    _hf_twin(tiny[0], folder)
    return load_hf(f"hf:{folder}", torch.device("cpu"))


def _image(seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).uniform(size=(40, 48, 3)) * 255).astype(np.uint8)


def _attention_modules(net):
    return [m for m in net.modules() if hasattr(m, "fused_attn")]


# -- the loader ------------------------------------------------------------------------------------


def test_a_saved_timm_vit_loads_offline_as_a_vit(tiny, bundle):
    net, _ = tiny
    assert bundle.kind == "vit" and bundle.model_id.startswith("timm:")
    assert bundle.token_grid == TokenGrid(prefix=1, height=4, width=4)
    assert bundle.input_size == (32, 32)
    assert bundle.target_layers[0] == "blocks.1.norm1"
    assert bundle.labels == tuple(LABELS)
    assert bundle.mean == pytest.approx(net.pretrained_cfg["mean"]) and bundle.std == pytest.approx(
        net.pretrained_cfg["std"]
    )
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(bundle.model(x), net(x))
    assert all(not p.requires_grad for p in bundle.model.parameters()) and not bundle.model.training


def test_an_unknown_timm_name_says_so_without_a_download():
    with pytest.raises(ModelLoadError, match="unknown timm model 'no_such_vit'"):
        load_classifier("timm:no_such_vit", device="cpu")


def test_a_folder_without_a_timm_config_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="config.json"):
        load_classifier(f"timm:{tmp_path}", device="cpu")


def test_the_twin_is_the_same_function(bundle, twin):
    """The weight mapping is right: the Hugging Face twin gives timm's logits."""
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(twin.model(x), bundle.model(x), rtol=1e-4, atol=1e-5)
    assert twin.token_grid == bundle.token_grid and twin.input_size == bundle.input_size
    assert twin.mean == pytest.approx(bundle.mean) and twin.std == pytest.approx(bundle.std)


# -- the transformer methods -----------------------------------------------------------------------


@pytest.mark.parametrize("target", [None, 2, 4])
def test_vit_methods_give_finite_maps_equal_to_the_hugging_face_twin(bundle, twin, target):
    """Through the public verb, as the pages and the CLI call it: each method's map on the timm ViT equals the
    one on the Hugging Face ViT with the same weights (rollout, Chefer, LeGrad read the attention probabilities,
    which timm forms only with fused attention off)."""
    names = VIT_METHODS + SHARED_METHODS
    image = _image()
    got = explain(bundle, image, names, target=target)
    want = explain(twin, image, names, target=target)
    assert [m.method for m in got] == names
    assert got[0].target == want[0].target
    for g, w in zip(got, want):
        assert g.values.shape == (32, 32) and np.isfinite(g.values).all(), g.method
        if not (g.method == "gradcam" and target is None):  # the top class here (0): Σ w A < 0 everywhere, ReLU → 0
            assert np.abs(g.values).max() > 0, g.method
        scale = max(float(np.abs(w.values).max()), 1e-12)
        np.testing.assert_allclose(g.values / scale, w.values / scale, rtol=0, atol=1e-4, err_msg=g.method)


def test_vit_methods_leave_fused_attention_and_no_hooks_behind(bundle):
    net = bundle.model
    modules = _attention_modules(net)
    assert modules, "timm's Attention has a fused_attn switch"
    before = [m.fused_attn for m in modules]
    for m in modules:  # the fast path a user of timm has on: the capture must switch it off for its pass
        m.fused_attn = True
    try:
        maps = explain(bundle, _image(1), VIT_METHODS)
        assert all(np.isfinite(m.values).all() for m in maps)
        assert [m.fused_attn for m in modules] == [True] * len(modules)
        assert not any(m._forward_hooks or m._backward_hooks for m in net.modules())
    finally:
        for m, f in zip(modules, before):
            m.fused_attn = f


def test_the_vit_maps_vary_over_the_token_grid(bundle):
    """Maps at the model input are the token grid's (4×4 cells of 8 px) upsampled: not constant."""
    for m in explain(bundle, _image(2), VIT_METHODS):
        assert m.values.std() > 1e-6 * max(float(np.abs(m.values).max()), 1e-12), m.method


# -- pytorch-grad-cam, the peer --------------------------------------------------------------------


def test_gradcam_matches_pytorch_grad_cam_on_the_timm_vit(tiny, bundle):
    """pytorch-grad-cam's documented ViT usage (its ``vit_example.py``: the last block's ``norm1``, a
    ``reshape_transform`` dropping the class token) against Glimpse's Grad-CAM at the same layer.

    pytorch-grad-cam returns ``minmax(ReLU(Σ w A))`` on the grid, resized to the input; Glimpse keeps the raw
    ``ReLU(Σ w A)`` (house rule 3: normalisation is a display option) and upsamples it. Bilinear resizing commutes
    with an affine map, so the two are equal up to that min-max: Glimpse's = a·peer + b with a > 0."""
    need("pytorch_grad_cam")
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    net, _ = tiny
    grid = bundle.token_grid

    def reshape_transform(tensor):
        result = tensor[:, grid.prefix :, :].reshape(tensor.size(0), grid.height, grid.width, tensor.size(2))
        return result.transpose(2, 3).transpose(1, 2)

    image = _image(3)
    for target in (2, 4):  # classes whose Grad-CAM is not all zero on this image
        (ours,) = explain(bundle, image, ["gradcam"], target=target)
        x = bundle.preprocess(image)
        with GradCAM(model=net, target_layers=[net.blocks[-1].norm1], reshape_transform=reshape_transform) as cam:
            peer = cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])[0]
        assert peer.shape == ours.values.shape
        design = np.stack([peer.ravel(), np.ones(peer.size)], 1).astype(np.float64)
        (a, b), *_ = np.linalg.lstsq(design, ours.values.ravel().astype(np.float64), rcond=None)
        assert a > 0
        np.testing.assert_allclose(a * peer + b, ours.values, rtol=0, atol=1e-4 * float(ours.values.max()))
