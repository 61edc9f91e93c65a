"""A ViT built of ``nn.MultiheadAttention`` blocks named ``encoder_layer_<i>``, laid out as torchvision's (the extras
tests run torchvision's own): the loader finds its blocks by name, and the transformer methods read attention
that the model asks for with ``need_weights=False``."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from glimpse.saliency import explain
from models.hub import _bundle
from tests.tiny_models import LABELS, image


class Block(nn.Module):
    def __init__(self, c: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(c, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(c, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(c, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(c, 2 * c), nn.GELU(), nn.Linear(2 * c, c))

    def forward(self, x):
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + y
        return x + self.mlp(self.ln_2(x))


class MultiheadViT(nn.Module):
    """32×32 input, 8-px patches, a class token, two blocks in a Sequential of named layers."""

    def __init__(self, c: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.patch_size = 8
        self.conv_proj = nn.Conv2d(3, c, 8, stride=8)
        self.class_token = nn.Parameter(torch.zeros(1, 1, c))
        self.pos_embedding = nn.Parameter(torch.zeros(1, 17, c))
        self.layers = nn.Sequential(OrderedDict(encoder_layer_0=Block(c, heads), encoder_layer_1=Block(c, heads)))
        self.ln = nn.LayerNorm(c, eps=1e-6)
        self.head = nn.Linear(c, len(LABELS))
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)

    def forward(self, x):
        t = self.conv_proj(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.class_token.expand(x.shape[0], -1, -1), t], 1) + self.pos_embedding
        return self.head(self.ln(self.layers(t))[:, 0])


def _bundle_of(net):
    return _bundle("tiny-mha-vit", net, LABELS, (32, 32), (0.5,) * 3, (0.25,) * 3, torch.device("cpu"), (4, 4))


def test_blocks_named_not_numbered_are_found():
    bundle = _bundle_of(MultiheadViT())
    assert bundle.kind == "vit" and bundle.target_layers[0] == "layers.encoder_layer_1.ln_1"


def test_rollout_reads_attention_asked_for_without_weights():
    """Rollout against the product of the modules' own (per-head) weights, asked for directly."""
    bundle = _bundle_of(MultiheadViT())
    img = image()
    (got,) = explain(bundle, img, ["rollout"])
    x = bundle.preprocess(img)
    attentions = []

    def ask(module, args, kwargs):
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def keep(_module, _args, output):
        attentions.append(output[1])

    net = bundle.model
    handles = [b.self_attention.register_forward_pre_hook(ask, with_kwargs=True) for b in net.layers]
    handles += [b.self_attention.register_forward_hook(keep) for b in net.layers]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    r = torch.eye(17)[None]
    for a in attentions:
        a = 0.5 * a.mean(1) + 0.5 * torch.eye(17)
        r = (a / a.sum(-1, keepdim=True)) @ r
    grid = r[:, 0, 1:].reshape(1, 1, 4, 4)
    want = torch.nn.functional.interpolate(grid, size=(32, 32), mode="bilinear", align_corners=False)[0, 0]
    np.testing.assert_allclose(got.values, want.numpy(), rtol=1e-4, atol=1e-6)


def test_chefer_gets_the_attentions_gradient_and_leaves_no_hook():
    bundle = _bundle_of(MultiheadViT())
    (m,) = explain(bundle, image(), ["chefer"], target=1)
    assert np.isfinite(m.values).all() and np.abs(m.values).max() > 0 and m.values.std() > 0
    assert not any(mod._forward_hooks or mod._forward_pre_hooks for mod in bundle.model.modules())
