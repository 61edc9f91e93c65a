"""torchvision's ViT (issue 27): it loaded as a CNN (its blocks are named ``encoder_layer_<i>``, not numbered, so the
layout search missed them and Grad-CAM fell on the patch projection), and its ``nn.MultiheadAttention``, called
with ``need_weights=False``, showed no attention to the transformer methods.

A tiny ``torchvision.models.VisionTransformer`` holding the weights of the timm ViT of ``test_timm`` (the same
architecture: class token, pre-norm blocks, fused q/k/v in-projection, eps 1e-6) goes through the loader's
bundle step (``models.hub._bundle``, what ``load_torchvision`` ends in: a ``torchvision:`` id only builds the
full-size models); ``torchvision:vit_b_16`` itself is loaded from a seeded checkpoint in torch's hub cache.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch

from tests.extras.support import need

tv = need("torchvision")
timm = need("timm")

from glimpse.saliency import explain  # noqa: E402
from glimpse.token_grid import TokenGrid  # noqa: E402
from models.hub import _bundle  # noqa: E402
from models.registry import load_classifier  # noqa: E402
from tests.extras.test_timm import ARGS, LABELS, _image, _seeded  # noqa: E402

#: every method that reads a ViT's blocks or head: LeGrad, Chefer-LRP and AttnLRP read torchvision's through vit_parts
METHODS = ["rollout", "chefer", "chefer_lrp", "legrad", "attnlrp", "gradient", "gradcam"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(timm bundle, torchvision bundle) of one set of weights."""
    net = _seeded(timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=len(LABELS), **ARGS))
    folder = tmp_path_factory.mktemp("timm_vit")
    timm.models.save_for_hf(net, folder, model_config={"label_names": LABELS})
    ours = tv.models.VisionTransformer(
        image_size=ARGS["img_size"],
        patch_size=ARGS["patch_size"],
        num_layers=ARGS["depth"],
        num_heads=ARGS["num_heads"],
        hidden_dim=ARGS["embed_dim"],
        mlp_dim=int(ARGS["embed_dim"] * ARGS["mlp_ratio"]),
        num_classes=len(LABELS),
    )
    t = net.state_dict()
    s = {
        "class_token": t["cls_token"],
        "conv_proj.weight": t["patch_embed.proj.weight"],
        "conv_proj.bias": t["patch_embed.proj.bias"],
        "encoder.pos_embedding": t["pos_embed"],
        "encoder.ln.weight": t["norm.weight"],
        "encoder.ln.bias": t["norm.bias"],
        "heads.head.weight": t["head.weight"],
        "heads.head.bias": t["head.bias"],
    }
    for i in range(ARGS["depth"]):
        o, m = f"encoder.layers.encoder_layer_{i}.", f"blocks.{i}."
        s[f"{o}self_attention.in_proj_weight"] = t[f"{m}attn.qkv.weight"]
        s[f"{o}self_attention.in_proj_bias"] = t[f"{m}attn.qkv.bias"]
        for kind in ("weight", "bias"):
            s[f"{o}self_attention.out_proj.{kind}"] = t[f"{m}attn.proj.{kind}"]
            s[f"{o}ln_1.{kind}"] = t[f"{m}norm1.{kind}"]
            s[f"{o}ln_2.{kind}"] = t[f"{m}norm2.{kind}"]
            s[f"{o}mlp.0.{kind}"] = t[f"{m}mlp.fc1.{kind}"]
            s[f"{o}mlp.3.{kind}"] = t[f"{m}mlp.fc2.{kind}"]
    ours.load_state_dict(s, strict=True)
    timm_bundle = load_classifier(f"timm:{folder}", device="cpu")
    size = (ARGS["img_size"], ARGS["img_size"])
    grid = (size[0] // ARGS["patch_size"],) * 2
    tv_bundle = _bundle(
        "torchvision:tiny-vit", ours, tuple(LABELS), size, timm_bundle.mean, timm_bundle.std, torch.device("cpu"), grid
    )
    return timm_bundle, tv_bundle


def test_a_torchvision_vit_is_a_vit_with_its_last_blocks_norm_first(pair):
    timm_bundle, tv_bundle = pair
    assert tv_bundle.kind == "vit" and tv_bundle.token_grid == TokenGrid(prefix=1, height=4, width=4)
    assert tv_bundle.target_layers[0] == "encoder.layers.encoder_layer_1.ln_1"
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(tv_bundle.model(x), timm_bundle.model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("target", [2, 4])
def test_torchvision_vit_maps_equal_the_timm_vits(pair, target):
    timm_bundle, tv_bundle = pair
    image = _image(5)
    got = explain(tv_bundle, image, METHODS, target=target)
    want = explain(timm_bundle, image, METHODS, target=target)
    for g, w in zip(got, want):
        assert np.isfinite(g.values).all() and np.abs(g.values).max() > 0, g.method
        scale = float(np.abs(w.values).max())
        np.testing.assert_allclose(g.values / scale, w.values / scale, rtol=0, atol=1e-4, err_msg=g.method)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in tv_bundle.model.modules())


def test_a_torchvision_vit_with_a_pre_logits_layer_is_refused_by_chefer_lrp_and_legrad_with_the_reason(pair):
    from glimpse.saliency import REGISTRY

    net = tv.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=3,
        representation_size=8,
    )  # fmt: skip
    bundle = _bundle("torchvision:tiny-vit-pre-logits", net, ("a", "b", "c"), (32, 32), pair[1].mean, pair[1].std,
                     torch.device("cpu"), (4, 4))  # fmt: skip
    assert "pre-logits" in REGISTRY["chefer_lrp"].applies(bundle)
    assert REGISTRY["chefer"].applies(bundle) is None
    with pytest.raises(ValueError, match="legrad cannot read VisionTransformer's head: .*pre-logits"):
        explain(bundle, _image(6), ["legrad"], target=1)


def test_vit_b_16_loads_from_the_cache_as_a_vit(tmp_path):
    """The id path itself, on the full-size model (seeded, not downloaded)."""
    weights = tv.models.ViT_B_16_Weights.DEFAULT
    checkpoint = tmp_path / "hub" / "checkpoints" / Path(urlparse(weights.url).path).name
    checkpoint.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(tv.models.vit_b_16(weights=None).state_dict(), checkpoint)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(tmp_path))
        bundle = load_classifier("torchvision:vit_b_16", device="cpu")
    assert bundle.kind == "vit" and bundle.token_grid == TokenGrid(prefix=1, height=14, width=14)
    assert bundle.target_layers[0] == "encoder.layers.encoder_layer_11.ln_1"
    (m,) = explain(bundle, _image(7), ["rollout"], target=0, batch_size=1)
    assert m.values.shape == (224, 224) and np.isfinite(m.values).all()
