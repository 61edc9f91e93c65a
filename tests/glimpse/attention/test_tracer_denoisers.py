"""Tracing tiny UNet / PixArt / SD3 / Flux denoisers built from configs, driven directly (no download)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from glimpse.attention import AttentionTracer, joint_text_block
from glimpse.attention.recorders import common
from glimpse.attention.recorders.cross import CrossAttentionRecorder
from tests.tiny_models import (
    TEXT_LEN,
    call,
    inputs,
    one_thread,
    tiny_flux,
    tiny_pixart,
    tiny_sd3,
    tiny_unet,
)

BUILDERS = {"unet": tiny_unet, "pixart": tiny_pixart, "sd3": tiny_sd3, "flux": tiny_flux}
KINDS = tuple(BUILDERS)


_threads = pytest.fixture(autouse=True, scope="module")(one_thread)


@pytest.fixture(scope="module")
def models():
    return {kind: build() for kind, build in BUILDERS.items()}


def _expected_layers(model, kind: str) -> set[str]:
    names = [n.removesuffix(".processor") for n in model.attn_processors]
    if kind in ("unet", "pixart"):
        return {n for n in names if n.endswith("attn2")}
    return {n for n in names if n.endswith(".attn")}


def _trace(model, kind, kw, **options):
    options = {"image_hw": (1, 1), "cfg": True, "text_len": TEXT_LEN, **options}
    with AttentionTracer(model, kind, **options) as tracer:
        out = call(model, kind, kw)
    layers, maps = tracer.result()
    return out, dict(zip(layers, maps))


@pytest.mark.parametrize("kind", KINDS)
def test_every_cross_attention_layer_recorded_and_output_unchanged(models, kind):
    model, kw = models[kind], inputs(kind)
    before = dict(model.attn_processors)
    reference = call(model, kind, kw)
    out, maps = _trace(model, kind, kw)
    assert set(maps) == _expected_layers(model, kind) and maps
    # fused SDPA with probe columns on V: same maths, float32 rounding only
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)
    after = model.attn_processors
    assert all(after[name] is proc for name, proc in before.items())
    for layer_maps in maps.values():
        assert layer_maps.dtype == np.float16 and layer_maps.shape[:2] == (1, TEXT_LEN)


@pytest.mark.parametrize("kind", KINDS)
def test_processors_restored_and_lock_released_when_the_model_raises(models, kind):
    model, kw = models[kind], inputs(kind)
    before = dict(model.attn_processors)
    lock = threading.RLock()
    last = list(model.attn_processors)[-1].removesuffix(".processor")

    def boom(*_):
        raise RuntimeError("mid-run failure")

    handle = model.get_submodule(last).register_forward_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="mid-run"):
            with AttentionTracer(model, kind, lock=lock, text_len=TEXT_LEN):
                call(model, kind, kw)
    finally:
        handle.remove()
    assert all(model.attn_processors[name] is proc for name, proc in before.items())
    free = []
    worker = threading.Thread(target=lambda: free.append(lock.acquire(blocking=False)))
    worker.start()
    worker.join()
    assert free == [True]


def test_a_failure_while_installing_restores_what_was_swapped_and_the_lock(models, monkeypatch):
    from glimpse.attention.kinds import UNet

    model = models["unet"]
    before = dict(model.attn_processors)
    built = []

    class FailsOnSecond(CrossAttentionRecorder):
        def __init__(self, tracer, layer, original):
            built.append(layer)
            if len(built) == 2:
                raise RuntimeError("install failed")
            super().__init__(tracer, layer, original)

    monkeypatch.setattr(UNet, "recorder", FailsOnSecond)
    lock = threading.RLock()
    with pytest.raises(RuntimeError, match="install failed"):
        with AttentionTracer(model, "unet", lock=lock):
            pass
    assert len(built) == 2 and all(model.attn_processors[n] is p for n, p in before.items())
    free = []
    worker = threading.Thread(target=lambda: free.append(lock.acquire(blocking=False)))
    worker.start()
    worker.join()
    assert free == [True]


def test_repeated_install_leaves_no_wrapper(models):
    model = models["unet"]
    before = dict(model.attn_processors)
    for _ in range(100):
        with AttentionTracer(model, "unet"):
            pass
    assert all(model.attn_processors[n] is p for n, p in before.items())
    assert not any(isinstance(p, CrossAttentionRecorder) for p in model.attn_processors.values())


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding written out: pairs (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin); x (1, S, H, d)."""
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return x * cos[None, :, None] + rotated * sin[None, :, None]


def _explicit(attn, kind: str, args: dict, b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Full softmax(QKᵀ/√d [+ mask]) of sample ``b`` from the layer's own projections.

    Returns (image→text block (H, N, L), image→image block (H, N, N) or None, P·V of the image queries).
    """
    x = args["hidden_states"][b : b + 1]
    c = args.get("encoder_hidden_states")
    c = None if c is None else c[b : b + 1]
    if kind in ("unet", "pixart"):
        heads = attn.heads
        q = attn.to_q(x).view(1, -1, heads, attn.to_q.out_features // heads)
        k = attn.to_k(c).view(1, -1, heads, q.shape[-1])
        v = attn.to_v(c).view(1, -1, heads, q.shape[-1])
        q, k, v = (t.transpose(1, 2)[0] for t in (q, k, v))
        s = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
        if args.get("attention_mask") is not None:
            s = s + args["attention_mask"][b : b + 1].reshape(1, 1, -1)
        p = s.softmax(-1)
        return p, None, (p @ v)
    if kind == "sd3":
        heads, d = attn.heads, attn.to_q.out_features // attn.heads

        def split(t):
            return t.view(1, -1, heads, d).transpose(1, 2)

        q, k, v = attn.norm_q(split(attn.to_q(x))), attn.norm_k(split(attn.to_k(x))), split(attn.to_v(x))
        qt = attn.norm_added_q(split(attn.add_q_proj(c)))
        kt, vt = attn.norm_added_k(split(attn.add_k_proj(c))), split(attn.add_v_proj(c))
        Q, K, V = torch.cat([q, qt], 2)[0], torch.cat([k, kt], 2)[0], torch.cat([v, vt], 2)[0]
        n = x.shape[1]
        p = (Q @ K.transpose(-1, -2) / d**0.5).softmax(-1)
        return p[:, :n, n:], p[:, :n, :n], (p @ V)[:, :n]
    # flux: [text, image], RoPE on queries and keys
    d = attn.head_dim
    cos, sin = args["image_rotary_emb"]
    if c is not None:
        q = torch.cat(
            [
                attn.norm_added_q(attn.add_q_proj(c).unflatten(-1, (-1, d))),
                attn.norm_q(attn.to_q(x).unflatten(-1, (-1, d))),
            ],
            1,
        )
        k = torch.cat(
            [
                attn.norm_added_k(attn.add_k_proj(c).unflatten(-1, (-1, d))),
                attn.norm_k(attn.to_k(x).unflatten(-1, (-1, d))),
            ],
            1,
        )
        v = torch.cat([attn.add_v_proj(c), attn.to_v(x)], 1).unflatten(-1, (-1, d))
    else:
        q = attn.norm_q(attn.to_q(x).unflatten(-1, (-1, d)))
        k = attn.norm_k(attn.to_k(x).unflatten(-1, (-1, d)))
        v = attn.to_v(x).unflatten(-1, (-1, d))
    q, k = _rope(q, cos, sin), _rope(k, cos, sin)
    Q, K, V = (t[0].transpose(0, 1) for t in (q, k, v))
    p = (Q @ K.transpose(-1, -2) / d**0.5).softmax(-1)
    L = TEXT_LEN
    return p[:, L:, :L], p[:, L:, L:], (p @ V)[:, L:]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", ["fused", "probe", "wrapped"])
def test_recorded_block_equals_explicit_full_softmax(models, kind, path, monkeypatch):
    """Every recording path: fused (the stock processor's steps; its SDPA call also returns the log-sum-exp,
    and the block is exp(q·k/√d − lse) on the kept text keys), probe (fused, with probe columns on V: the
    path off the CPU) and wrapped (any other processor runs untouched; the probabilities are recomputed
    from its projections)."""
    model, kw = models[kind], inputs(kind)
    if path == "probe":
        monkeypatch.setattr(common, "lse_kernel", lambda query: False)
    saved = dict(model.attn_processors)
    if path == "wrapped":
        model.set_attn_processor({name: _Passthrough(proc) for name, proc in saved.items()})
    try:
        _check_against_explicit(model, kind, kw)
    finally:
        model.set_attn_processor(dict(saved))


class _Passthrough:
    """A processor the tracer does not know (like a user's custom one): it delegates to the stock one."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, *args, **kwargs):
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, *args, **kwargs)


def _check_against_explicit(model, kind, kw):
    captured: dict[str, dict] = {}
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    for layer in _expected_layers(model, kind):
        module = model.get_submodule(layer)

        def pre(mod, args, kwargs, layer=layer):
            captured[layer] = {"hidden_states": args[0] if args else kwargs["hidden_states"], **kwargs}

        def post(mod, args, kwargs, out, layer=layer):
            outputs[layer] = out[0] if isinstance(out, tuple) else out

        handles += [module.register_forward_pre_hook(pre, with_kwargs=True)]
        handles += [module.register_forward_hook(post, with_kwargs=True)]
    try:
        _, maps = _trace(model, kind, kw, heads=True)
    finally:
        for h in handles:
            h.remove()
    for layer, recorded in maps.items():
        attn = model.get_submodule(layer)
        with torch.no_grad():
            text_block, image_block, pv = _explicit(attn, kind, captured[layer], b=1)  # the conditional half
        heads, n, L = text_block.shape
        got = torch.from_numpy(recorded[0].astype(np.float32)).reshape(heads, L, n).transpose(1, 2)
        torch.testing.assert_close(got, text_block.float(), atol=2e-3, rtol=1e-2)
        if image_block is None:  # cross-attention: a row over all text tokens sums to one
            np.testing.assert_allclose(got.sum(-1).numpy(), 1.0, atol=5e-3)
        else:  # joint attention: the text block and the image block share one normaliser
            np.testing.assert_allclose((got.sum(-1) + image_block.sum(-1)).numpy(), 1.0, atol=5e-3)
            assert float(got.sum(-1).max()) < 1.0
        # the reference is the model's own attention: P·V through to_out gives the layer's real output
        if not (kind == "flux" and "single" in layer):
            real = outputs[layer][1:2]
            with torch.no_grad():
                mine = attn.to_out[0](pv.transpose(0, 1).reshape(1, n, -1))
            torch.testing.assert_close(mine, real, atol=1e-4, rtol=1e-4)


def test_pixart_mask_gives_padding_zero_attention(models):
    _, maps = _trace(models["pixart"], "pixart", inputs("pixart"))
    for m in maps.values():
        assert np.abs(m[0, -2:].astype(np.float32)).max() < 1e-3  # the two padded tokens
        np.testing.assert_allclose(m[0].astype(np.float32).sum(0), 1.0, atol=5e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_head_mean_on_the_fly_equals_mean_of_heads(models, kind):
    model, kw = models[kind], inputs(kind)
    _, per_head = _trace(model, kind, kw, heads=True)
    _, mean = _trace(model, kind, kw, heads=False)
    for layer in per_head:
        np.testing.assert_allclose(
            mean[layer].astype(np.float32), per_head[layer].astype(np.float32).mean(1), atol=1e-3
        )


def test_token_positions_and_resolutions_restrict_what_is_kept(models):
    model, kw = models["unet"], inputs("unet")
    _, full = _trace(model, "unet", kw)
    _, kept = _trace(model, "unet", kw, token_positions=[0, 2], resolutions=[8])
    assert set(kept) == {name for name, m in full.items() if m.shape[-2] == 8}
    for name, m in kept.items():
        np.testing.assert_array_equal(m, full[name][:, [0, 2]])


def test_joint_text_block_chunks_match_one_shot():
    g = torch.Generator().manual_seed(0)
    q, k, kt = (torch.randn(3, n, 8, generator=g) for n in (50, 50, 7))
    full = (torch.cat([q @ k.transpose(-1, -2), q @ kt.transpose(-1, -2)], -1) / 8**0.5).softmax(-1)[..., 50:]
    torch.testing.assert_close(joint_text_block(q, k, kt, 8**-0.5, chunk_values=3 * 50 * 4), full)


def test_unknown_kind_is_refused(models):
    with pytest.raises(ValueError, match="kind: unknown 'sdxl-turbo'"):
        AttentionTracer(models["unet"], "sdxl-turbo")


def test_head_sums_are_the_per_head_maps_summed_over_calls(models):
    model = models["unet"]
    options = {"image_hw": (1, 1), "cfg": True, "heads": True, "head_sums": True}
    with AttentionTracer(model, "unet", **options) as tracer:
        for seed in range(3):
            call(model, "unet", inputs("unet", seed=seed))
    layers, maps = tracer.result()
    sums = tracer.sums()
    assert len(sums) == len(layers) == len(maps)
    for per_step, total in zip(maps, sums):  # (T, heads, K, h, w) float16 vs (heads, K, h, w) float32
        assert total.dtype == np.float32 and total.shape == per_step.shape[1:]
        np.testing.assert_allclose(total, per_step.astype(np.float32).sum(0), atol=3e-3)
    with AttentionTracer(model, "unet") as plain:
        call(model, "unet", inputs("unet"))
    assert plain.sums() is None


def test_blocks_restrict_the_recorded_layers(models):
    model, kw = models["unet"], inputs("unet")
    _, down = _trace(model, "unet", kw, blocks=("down_blocks.",))
    assert down and all(name.startswith("down_blocks.") for name in down)
    _, every = _trace(model, "unet", kw)
    assert any(name.startswith("mid_block") for name in every) and set(down) < set(every)
    with pytest.raises(ValueError, match=r"denoiser: no cross-attention layers found in blocks \['nope.'\]"):
        AttentionTracer(model, "unet", blocks=("nope.",)).__enter__()
    with pytest.raises(ValueError, match="blocks: 'down_blocks.' must be a non-empty sequence"):
        AttentionTracer(model, "unet", blocks="down_blocks.")
    assert all(not isinstance(p, CrossAttentionRecorder) for p in model.attn_processors.values())


@pytest.mark.parametrize("lse", [True, False], ids=["lse", "probe"])
@pytest.mark.parametrize("mask", [None, "additive", "boolean"])
@pytest.mark.parametrize("positions", [(0, 2, 3), (1, 2, 3)], ids=["gather", "slice"])
def test_attend_returns_the_sdpa_output_and_the_explicit_softmax_block(monkeypatch, lse, mask, positions):
    """attend(): the layer's output as SDPA gives it, and the kept text columns of the conditional sample's
    softmax over all keys, for image rows [2, 9) and text keys [9, 14) of a joint sequence (kept positions
    gathered, or sliced when they are consecutive)."""
    if not lse:
        monkeypatch.setattr(common, "lse_kernel", lambda query: False)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 14, 8, generator=g) * 2 for _ in range(3))
    bias = None
    if mask == "additive":
        bias = torch.randn(2, 1, 1, 14, generator=g)
    elif mask == "boolean":
        bias = torch.ones(2, 1, 14, 14, dtype=torch.bool)
        bias[1, :, :, 12] = False  # a kept text key nobody may attend to
    tracer = AttentionTracer(torch.nn.Module(), "sd3", token_positions=positions, cfg=True)
    out, block = common.attend(tracer, q, k, v, mask=bias, rows=slice(2, 9), text=(9, 5))
    block = block.transpose(-1, -2)  # text-major (H, K, N) -> (H, N, K)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    scores = q[1] @ k[1].transpose(-1, -2) / 8**0.5
    if mask == "additive":
        scores = scores + bias[1]
    elif mask == "boolean":
        scores = scores.masked_fill(~bias[1], float("-inf"))
    explicit = scores.softmax(-1)[:, 2:9][..., [9 + p for p in positions]]
    assert block.shape == (3, 7, 3)
    torch.testing.assert_close(block, explicit, atol=1e-6, rtol=1e-5)
    if mask == "boolean":
        assert float(block[..., 2].abs().max()) == 0.0


def test_probe_columns_are_built_once_per_installation(models, monkeypatch):
    monkeypatch.setattr(common, "lse_kernel", lambda query: False)
    built = []
    zeros = torch.zeros
    monkeypatch.setattr(common.torch, "zeros", lambda *a, **kw: built.append(a) or zeros(*a, **kw))
    model, kw = models["sd3"], inputs("sd3")
    with AttentionTracer(model, "sd3", image_hw=(1, 1), cfg=True) as tracer:
        for _ in range(3):
            call(model, "sd3", kw)
        assert len(tracer.probes) == len(built) == 1  # every layer has one shape: one probe for 2 layers x 3 calls
    assert not tracer.probes  # dropped on exit with the positions they were keyed by


def test_maps_moved_to_the_host_in_chunks_equal_maps_moved_once(models):
    """On an accelerator the per-step maps wait on the device and move to the CPU in chunks when too many
    wait; the chunks join into the same (T, K, h, w) maps (shown on the CPU by moving after every call)."""
    model = models["unet"]

    def trace(chunked: bool):
        with AttentionTracer(model, "unet", image_hw=(1, 1)) as tracer:
            for seed in range(3):
                call(model, "unet", inputs("unet", seed=seed))
                if chunked:
                    tracer._to_host()
        return tracer.result()

    (layers, once), (same, chunks) = trace(False), trace(True)
    assert layers == same and all(m.shape[0] == 3 for m in chunks)
    for a, b in zip(once, chunks):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_attend_in_half_precision_computes_the_block_in_float32(dtype):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 14, 8, generator=g).to(dtype) for _ in range(3))
    tracer = AttentionTracer(torch.nn.Module(), "sd3", cfg=True)
    out, block = common.attend(tracer, q, k, v, mask=None, rows=slice(0, 9), text=(9, 5))
    assert out.dtype == dtype and block.dtype == torch.float32 and block.shape == (3, 5, 9)
    explicit = (q[1].float() @ k[1].float().transpose(-1, -2) / 8**0.5).softmax(-1)[:, :9, 9:]
    torch.testing.assert_close(block.transpose(-1, -2), explicit, atol=5e-3, rtol=2e-2)
