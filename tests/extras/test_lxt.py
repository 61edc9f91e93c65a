"""AttnLRP against its authors' library, lxt 2.1 (issue 27), on a tiny torchvision ViT of random weights: the
relevance of each patch token entering the first block, gradient × input there, as ``lxt.efficient`` computes it.

lxt ships one rule set for torchvision's ViT, ``vit_torch.cp_LRP`` (AttnLRP's rules outside attention, CP-LRP
inside): Glimpse's ``attnlrp`` with ``attention="cp"`` is checked against it. For the uniform rule inside attention
lxt has no torchvision dict; the one built here is its ``attnLRP`` dicts of the other models applied to
``nn.MultiheadAttention``: ``wrap_attention_forward``'s ``divide_gradient`` of q, k by 4 and v by 2, with its
GELU, LayerNorm and dropout patches. lxt patches classes, not instances: each case undoes its patches.
"""

from __future__ import annotations

import sys
import types
from functools import partial

import pytest
import torch

from tests.extras.support import need

tv = need("torchvision")
try:
    # lxt 2.1 imports its BERT patch on `import lxt.efficient`, which needs a helper transformers 5 removed; the
    # BERT patch is not used here, so that one module is stood in for
    sys.modules.setdefault("lxt.efficient.models.bert", types.SimpleNamespace(attnLRP={}, modeling_bert=None))
    from lxt.efficient import monkey_patch
    from lxt.efficient.models import vit_torch
    from lxt.efficient.patches import dropout_forward, layer_norm_forward, non_linear_forward, patch_method
    from lxt.efficient.rules import divide_gradient
except ImportError as err:  # pragma: no cover - the extras environment installs it
    pytest.skip(f"lxt does not import ({err}); `make test-extras` installs it", allow_module_level=True)

from torch import nn  # noqa: E402
from torchvision.models import vision_transformer  # noqa: E402

from glimpse.saliency.base import Target  # noqa: E402
from glimpse.saliency.contract import Context, ScoreModel  # noqa: E402
from glimpse.saliency.methods.attnlrp import AttnLRP  # noqa: E402
from models.hub import _bundle  # noqa: E402

_PATCHED = (nn.GELU, nn.LayerNorm, nn.Dropout, nn.MultiheadAttention)
_MHA_FORWARD = nn.MultiheadAttention.forward


def _uniform_attention(self, query, key, value, *args, **kwargs):
    return _MHA_FORWARD(self, divide_gradient(query, 4), divide_gradient(key, 4), divide_gradient(value, 2), *args,
                        **kwargs)  # fmt: skip


UNIFORM = {
    vision_transformer.nn.GELU: partial(patch_method, non_linear_forward, keep_original=True),
    vision_transformer.nn.LayerNorm: partial(patch_method, layer_norm_forward),
    vision_transformer.nn.Dropout: partial(patch_method, dropout_forward),
    vision_transformer.nn.MultiheadAttention: partial(patch_method, _uniform_attention),
}


def _vit() -> nn.Module:
    """torchvision zero-initialises the head and the class token: every weight gets seeded noise as well."""
    torch.manual_seed(0)
    net = tv.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                                      mlp_dim=64, num_classes=5).eval()  # fmt: skip
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
            p.requires_grad_(False)
    return net


def _lxt_tokens(rules: dict, x: torch.Tensor, target: int) -> torch.Tensor:
    """lxt's relevance at the first block's input tokens (B, T), its rules patched in for one pass."""
    saved = {c: c.__dict__.get("forward") for c in _PATCHED}
    try:
        monkey_patch(vision_transformer, rules, verbose=False)
        net = _vit()
        seen = {}

        def keep(_module, args):
            args[0].retain_grad()
            seen["t"] = args[0]

        handle = net.encoder.layers[0].register_forward_pre_hook(keep)
        net(x.clone().requires_grad_(True))[:, target].sum().backward()  # lxt's example: seed 1 at the logit
        handle.remove()
        return (seen["t"] * seen["t"].grad).sum(-1).detach()
    finally:
        for c, forward in saved.items():
            c.forward = forward
            if "original_forward" in c.__dict__:
                delattr(c, "original_forward")


@pytest.mark.parametrize("attention, rules", [("cp", vit_torch.cp_LRP), ("attnlrp", UNIFORM)])
def test_attnlrp_equals_lxt(attention, rules):
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    target = 1
    want = _lxt_tokens(rules, x, target)[:, 1:]  # the patches, after the class token
    assert nn.GELU.forward is not None and "original_forward" not in nn.GELU.__dict__  # undone
    bundle = _bundle("torchvision:peer", _vit(), tuple("abcde"), (32, 32), (0.5,) * 3, (0.5,) * 3,
                     torch.device("cpu"), (4, 4))  # fmt: skip
    t = Target(target)
    ctx = Context(bundle=bundle, target=t, layer=None, seed=0, batch_size=8, score=ScoreModel(bundle.model, t),
                  prob_score=ScoreModel(bundle.model, t, probs=True))  # fmt: skip
    got = AttnLRP().attribute(ctx, x, {"start_block": 0, "attention": attention}).maps.reshape(3, 16)
    scale = float(want.abs().max())
    torch.testing.assert_close(got / scale, want / scale, rtol=0, atol=1e-5)
    # and not plain gradient × input, which the rules change
    plain = _lxt_tokens({}, x, target)[:, 1:]
    assert (got - plain).abs().max() > 0.05 * scale
