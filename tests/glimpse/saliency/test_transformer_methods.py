"""Attention rollout, Chefer's generic rule, their LRP transformer attribution and LeGrad on tiny configs of every
listed transformer family (no download): each map equals a direct computation from the model's own attention
probabilities (``output_attentions=True``), the LRP rules conserve relevance (worked by hand on small cases, and
through a whole model), and the methods say why they do not apply to a CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glimpse.saliency.base import Target
from glimpse.saliency.contract import Context, ScoreModel
from glimpse.saliency.methods.chefer import Chefer
from glimpse.saliency.methods.chefer_lrp import CheferLRP, attention_relevance, lrp_add, lrp_linear, lrp_matmul
from glimpse.saliency.methods.legrad import LeGrad
from glimpse.saliency.methods.rollout import AttentionRollout
from glimpse.saliency.methods.transformer import applies
from glimpse.saliency.methods.vit_parts import logit_lens
from tests.tiny_models import vit_families

LABELS = {0: "zero", 1: "one", 2: "two"}


def _families():
    return vit_families(LABELS)


@pytest.fixture(scope="module", params=sorted(_families()))
def family(request, tmp_path_factory):
    """(name, bundle) of a tiny seeded classifier saved to a folder and loaded by Glimpse's ``hf:`` loader."""
    from models.hub import load_hf

    cls, config = _families()[request.param]
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp(request.param)
    cls(config).save_pretrained(folder)
    return request.param, load_hf(f"hf:{folder}", torch.device("cpu"))


def _context(bundle, target: int = 1) -> Context:
    t = Target(target)
    return Context(bundle=bundle, target=t, layer=None, seed=0, batch_size=8, score=ScoreModel(bundle.model, t),
                   prob_score=ScoreModel(bundle.model, t, probs=True))  # fmt: skip


def _inputs(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _reference_attentions(bundle, x):
    """The model's own attention probabilities (``output_attentions=True``), in the graph."""
    net = bundle.model.hf
    out = net(pixel_values=x, output_attentions=True)
    return out.logits, list(out.attentions)


def test_each_family_loads_as_a_vit_the_methods_apply_to(family):
    name, bundle = family
    assert bundle.kind == "vit" and bundle.token_grid.height == bundle.token_grid.width == 4, name
    assert applies(bundle) is None


def test_rollout_is_the_product_of_the_residual_attention(family):
    name, bundle = family
    x = _inputs()
    got = AttentionRollout().attribute(_context(bundle), x, {"head_fusion": "mean", "start_block": 0}).maps
    with torch.no_grad():
        _, attentions = _reference_attentions(bundle, x)
    grid = bundle.token_grid
    r = torch.eye(attentions[0].shape[-1]).expand(x.shape[0], -1, -1)
    for a in attentions:
        a = 0.5 * a.mean(1) + 0.5 * torch.eye(a.shape[-1])
        r = (a / a.sum(-1, keepdim=True)) @ r
    want = r[:, 0, grid.prefix :].reshape(-1, grid.height, grid.width)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert torch.allclose(got.sum((1, 2)), r[:, 0, grid.prefix :].sum(1))


def test_chefer_weights_attention_by_the_targets_gradient(family):
    name, bundle = family
    x = _inputs()
    got = Chefer().attribute(_context(bundle, 2), x, {"start_block": 0}).maps
    xr = x.clone().requires_grad_(True)
    logits, attentions = _reference_attentions(bundle, xr)
    grads = torch.autograd.grad(logits[:, 2].sum(), attentions)
    r = torch.eye(attentions[0].shape[-1]).expand(x.shape[0], -1, -1)
    for a, g in zip(attentions, grads):
        r = r + (g * a).clamp(min=0).mean(1) @ r
    grid = bundle.token_grid
    torch.testing.assert_close(got, r[:, 0, grid.prefix :].reshape(-1, grid.height, grid.width), rtol=1e-4, atol=1e-6)


def test_legrads_lens_reproduces_the_logits_and_its_map_is_min_max_scaled(family):
    name, bundle = family
    x = _inputs()
    with torch.no_grad():
        out = bundle.model.hf(pixel_values=x, output_hidden_states=True)
    torch.testing.assert_close(logit_lens(bundle)(out.hidden_states[-1]), out.logits, rtol=1e-4, atol=1e-5)
    maps = LeGrad().attribute(_context(bundle), x, {"start_block": 0}).maps
    assert maps.shape == (2, 4, 4)
    flat = maps.flatten(1)
    assert torch.allclose(flat.amin(1), torch.zeros(2)) and torch.allclose(flat.amax(1), torch.ones(2))


def test_legrad_sums_each_blocks_own_gradient(family):
    """The last block's term by hand: the head's score on its tokens, d/dA of that block, positive part,
    mean over heads and queries; with start_block = -1 LeGrad is that term, min-max scaled."""
    name, bundle = family
    x = _inputs(1)
    xr = x.clone().requires_grad_(True)
    out = bundle.model.hf(pixel_values=xr, output_attentions=True, output_hidden_states=True)
    score = logit_lens(bundle)(out.hidden_states[-1])[:, 1].sum()
    (g,) = torch.autograd.grad(score, out.attentions[-1])
    grid = bundle.token_grid
    term = g.clamp(min=0).mean(1).mean(1)[:, grid.prefix :].reshape(1, grid.height, grid.width)
    want = (term - term.min()) / (term.max() - term.min())
    got = LeGrad().attribute(_context(bundle), x, {"start_block": -1}).maps
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_a_cnn_is_told_why_the_transformer_methods_do_not_apply():
    from models.registry import load_classifier

    bundle = load_classifier("shapes-classifier")
    why = applies(bundle)
    assert why is not None and "not a ViT" in why
    with pytest.raises(ValueError, match="not a ViT"):
        Chefer().attribute(_context(bundle), torch.zeros(1, 3, 32, 32), {"start_block": 0})
    from glimpse.saliency import explain

    image = np.full((32, 32, 3), 255, np.uint8)
    with pytest.raises(ValueError, match="legrad does not apply to shapes-classifier: it reads a vision transformer"):
        explain(bundle, image, ["gradient", "legrad"])


def test_explain_runs_them_beside_the_other_methods_on_a_vit(family):
    """Through the registry and the engine, as the pages and the CLI call them: maps at the model input."""
    from glimpse.saliency import explain, get_method

    _, bundle = family
    image = (np.random.default_rng(0).uniform(size=(40, 48, 3)) * 255).astype(np.uint8)
    names = ["gradient", "gradcam", "rollout", "chefer", "chefer_lrp", "legrad", "attnlrp"]
    maps = explain(bundle, image, names)
    assert [m.method for m in maps] == names
    assert all(m.values.shape == (32, 32) and np.isfinite(m.values).all() for m in maps)
    assert {get_method(n).models for n in ("rollout", "chefer", "chefer_lrp", "legrad", "attnlrp")} == {"vit"}
    assert get_method("gradient").models == "any"


def test_start_block_out_of_range_is_a_clear_error(family):
    _, bundle = family
    with pytest.raises(ValueError, match="start_block must be in -2..1"):
        AttentionRollout().attribute(_context(bundle), _inputs(1), {"head_fusion": "mean", "start_block": 5})
    assert np.isfinite(
        AttentionRollout()
        .attribute(_context(bundle), _inputs(1), {"head_fusion": "max", "start_block": -1})
        .maps.numpy()
    ).all()


def test_the_capture_leaves_no_hook_and_restores_fused_attention_when_the_model_raises(family):
    from glimpse.saliency.methods.transformer import attention_capture, transformer_blocks
    from tests.probes import hook_count

    _, bundle = family
    net = bundle.model.hf
    blocks = transformer_blocks(net)
    blocks[0].fused_attn = True  # as timm's Attention carries it
    before = hook_count(net)  # transformers keeps hooks of its own once output_attentions was asked for
    boom = blocks[-1].register_forward_hook(lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    try:
        with pytest.raises(RuntimeError, match="boom"), attention_capture(bundle):
            assert blocks[0].fused_attn is False
            bundle.model(_inputs(1))
    finally:
        boom.remove()
    assert blocks[0].fused_attn is True and hook_count(net) == before
    del blocks[0].fused_attn


# ------------------------------------------------------------------------------------------------ Chefer's LRP
def test_chefer_lrp_gives_a_finite_grid_map_on_every_family_and_leaves_no_hook(family):
    from tests.probes import hook_count

    name, bundle = family
    assert CheferLRP().applies(bundle) is None, name
    before = hook_count(bundle.model.hf)
    maps = CheferLRP().attribute(_context(bundle, 2), _inputs(), {"start_block": 0}).maps
    assert maps.shape == (2, 4, 4) and torch.isfinite(maps).all() and maps.abs().amax() > 0, name
    assert hook_count(bundle.model.hf) == before
    # the residual rule's sums are per example (the reference's run over the batch): each image's map alone
    alone = CheferLRP().attribute(_context(bundle, 2), _inputs()[1:], {"start_block": 0}).maps
    torch.testing.assert_close(alone[0], maps[1], rtol=1e-4, atol=1e-7)
    # a later start block rolls out fewer blocks of the same relevances: a different, still finite map
    late = CheferLRP().attribute(_context(bundle, 2), _inputs(), {"start_block": -1}).maps
    assert torch.isfinite(late).all() and not torch.allclose(late, maps)


def test_the_lrp_rules_on_cases_worked_by_hand():
    # y = W x, x = (1, -2, 3): output 0's contributions x_j w_0j are (1, -4, -3), only x_0's positive, so its
    # relevance 0.6 goes to x_0; output 1's are (-1, 2, 6): its 0.4 splits 2 : 6 between x_1 and x_2
    x = torch.tensor([[1.0, -2.0, 3.0]])
    w = torch.tensor([[1.0, 2.0, -1.0], [-1.0, -1.0, 2.0]])
    torch.testing.assert_close(lrp_linear(x, w, torch.tensor([[0.6, 0.4]])), torch.tensor([[0.6, 0.1, 0.3]]))
    # a + b with a = (2, 1), b = (-1, 1), r = (1, 1): gradient x input gives a (2, 0.5) and b (-1, 0.5), sums 2.5
    # and -0.5; rescaled to the shares 2.5/3 and 0.5/3 of the total 2: a (4/3, 1/3), b (2/3, -1/3)
    ra, rb = lrp_add(torch.tensor([[2.0, 1.0]]), torch.tensor([[-1.0, 1.0]]), torch.tensor([[1.0, 1.0]]))
    torch.testing.assert_close(ra, torch.tensor([[4 / 3, 1 / 3]]))
    torch.testing.assert_close(rb, torch.tensor([[2 / 3, -1 / 3]]))
    # a product a @ b: each factor gets half of the relevance, a_ik b_kj / (ab)_ij of each r_ij
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0], [1.0]])  # ab = 5
    r_a, r_b = lrp_matmul(a, b, torch.tensor([[10.0]]))
    torch.testing.assert_close(r_a, torch.tensor([[3.0, 2.0]]))
    torch.testing.assert_close(r_b, torch.tensor([[3.0], [2.0]]))


def test_the_relevance_started_at_the_logits_reaches_the_first_block_whole(family):
    """Every rule conserves the total (the linear rule normalises by the positive contributions and gives the
    bias none, the products halve, the residual shares rescale), so the one unit put on the target's logit
    arrives at the first block's input tokens, per example. On a copy with every weight drawn at random: the
    fresh DeiT's class and distillation tokens are zeros, whose queries are zero, and a product that is zero
    passes no relevance (nor does the reference's)."""
    import copy
    import dataclasses

    from glimpse.saliency.methods.transformer import attention_capture
    from tests.tiny_models import _seeded_normal_

    name, bundle = family
    bundle = dataclasses.replace(bundle, model=copy.deepcopy(bundle.model))
    _seeded_normal_(bundle.model, 0, 0.3)
    x = _inputs()
    with torch.no_grad(), attention_capture(bundle) as cap:
        bundle.model(x)
    relevances, at_input = attention_relevance(bundle, cap, Target(1))
    torch.testing.assert_close(at_input.sum((1, 2)), torch.ones(2), rtol=0, atol=1e-4)
    assert len(relevances) == len(cap.blocks) and all(r.shape == cap.attentions[0].shape for r in relevances)


def test_a_block_the_lrp_rules_cannot_read_is_refused_with_the_reason(tmp_path):
    """DINOv2 with its gated (SwiGLU) MLP: the attention methods run, the LRP one is hidden with the reason."""
    import copy

    from glimpse.saliency import explain
    from models.hub import load_hf

    cls, config = _families()["dinov2"]
    config = copy.deepcopy(config)
    config.use_swiglu_ffn = True
    torch.manual_seed(0)
    cls(config).save_pretrained(tmp_path)
    bundle = load_hf(f"hf:{tmp_path}", torch.device("cpu"))
    assert applies(bundle) is None
    why = CheferLRP().applies(bundle)
    assert why is not None and "block 0 cannot be read" in why and "fc1 -> activation -> fc2" in why
    with pytest.raises(ValueError, match="chefer_lrp does not apply"):
        explain(bundle, np.zeros((32, 32, 3), np.uint8), ["chefer_lrp"])
    from glimpse.saliency.methods.attnlrp import AttnLRP

    why = AttnLRP().applies(bundle)
    assert why is not None and "AttnLRP relevance" in why and "fc1 -> activation -> fc2" in why


def test_the_attnlrp_rules_pass_relevance_as_the_paper_says():
    """In gradient form, relevance at a layer is gradient × input. The identity rule passes it unchanged through
    the activation; the uniform rule gives each factor of a product half; the LayerNorm rule (its deviation held
    constant) passes what the output holds beyond its bias; softmax is gradient × input, R_in = x (R − s ΣR)."""
    from glimpse.saliency.methods.attnlrp import _UniformMatmul, identity_activation, layer_norm_identity

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 6, generator=gen, dtype=torch.float64).requires_grad_(True)
    seed = torch.randn(2, 5, 6, generator=gen, dtype=torch.float64)
    y = identity_activation(torch.nn.GELU(), x)
    torch.testing.assert_close(y, torch.nn.functional.gelu(x))
    (g,) = torch.autograd.grad(y, x, seed)
    torch.testing.assert_close(x * g, y.detach() * seed)  # relevance per unit, unchanged

    a = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64).requires_grad_(True)
    b = torch.randn(2, 4, 5, generator=gen, dtype=torch.float64).requires_grad_(True)
    z = _UniformMatmul.apply(a, b)
    r = torch.randn(2, 3, 5, generator=gen, dtype=torch.float64)
    ga, gb = torch.autograd.grad(z, (a, b), r)
    torch.testing.assert_close(ga, (r @ b.detach().transpose(-1, -2)) / 2)
    torch.testing.assert_close((a * ga).sum(), (z.detach() * r).sum() / 2)  # half of Σ z·g to each factor
    torch.testing.assert_close((b * gb).sum(), (z.detach() * r).sum() / 2)

    ln = torch.nn.LayerNorm(6, dtype=torch.float64)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5, generator=gen)
        ln.bias.uniform_(-1, 1, generator=gen)
    y = layer_norm_identity(ln, x)
    torch.testing.assert_close(y, ln(x))
    (g,) = torch.autograd.grad(y, x, seed)
    torch.testing.assert_close((x * g).sum(-1), ((y.detach() - ln.bias.detach()) * seed).sum(-1))

    s = torch.randn(1, 7, generator=gen, dtype=torch.float64).requires_grad_(True)
    p = s.softmax(-1)
    r_out = torch.randn(1, 7, generator=gen, dtype=torch.float64)
    (g,) = torch.autograd.grad(p, s, r_out / p.detach())  # R_out = p ⊙ g
    torch.testing.assert_close(s * g, s.detach() * (r_out - p.detach() * r_out.sum()))


def test_attnlrp_gives_each_patch_token_its_relevance_on_every_family(family):
    """A signed (h, w) map per image, equal to the image alone in a batch; no hook left; a later start block
    reads the relevance at that block's input tokens instead."""
    from glimpse.saliency.methods.attnlrp import AttnLRP
    from tests.probes import hook_count

    name, bundle = family
    assert AttnLRP().applies(bundle) is None, name
    before = hook_count(bundle.model.hf)
    maps = AttnLRP().attribute(_context(bundle, 2), _inputs(), {"start_block": 0}).maps
    assert maps.shape == (2, 4, 4) and torch.isfinite(maps).all() and maps.abs().amax() > 0, name
    assert (maps > 0).any() and (maps < 0).any(), name  # signed: evidence for and against
    assert hook_count(bundle.model.hf) == before
    alone = AttnLRP().attribute(_context(bundle, 2), _inputs()[1:], {"start_block": 0}).maps
    torch.testing.assert_close(alone[0], maps[1], rtol=1e-4, atol=1e-6)
    late = AttnLRP().attribute(_context(bundle, 2), _inputs(), {"start_block": -1}).maps
    assert torch.isfinite(late).all() and not torch.allclose(late, maps)
