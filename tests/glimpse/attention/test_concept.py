"""ConceptAttention (glimpse.attention.concept) on SD3 and Flux pipelines from tiny configs: shapes, a softmax over
concepts, an image stream that does not change, the output-space map computed by hand, refusals, clean hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glimpse.attention import generate_with_attention, word_maps
from glimpse.attention.concept import (
    ConceptStream,
    applies,
    check_concepts,
    concept_states,
    generate_with_concepts,
)
from models.diffusion import bundle_from_pipeline
from tests.tiny_models import (
    inputs,
    one_thread,
    tiny_flux,
    tiny_flux_pipeline,
    tiny_sd3,
    tiny_sd3_pipeline,
    tiny_sd_pipeline,
)

_threads = pytest.fixture(autouse=True, scope="module")(one_thread)

#: kind -> (pipeline, guidance, image side, token grid side, joint blocks traced for concepts)
CASES = {
    "sd3": (tiny_sd3_pipeline, 7.0, 16, 4, ("transformer_blocks.0.attn", "transformer_blocks.1.attn")),
    "flux": (tiny_flux_pipeline, 3.5, 32, 8, ("transformer_blocks.0.attn",)),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    make, guidance, side, grid, layers = CASES[request.param]
    bundle = bundle_from_pipeline(make(), f"tiny-{request.param}", torch.device("cpu"))
    return bundle, guidance, side, grid, layers


def _no_hooks(module: torch.nn.Module) -> bool:
    return not any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


def test_maps_have_the_cross_attention_shape_and_sum_to_one_over_concepts(case):
    bundle, guidance, side, grid, layers = case
    result = generate_with_concepts(bundle, "a red dog", ["red", "dog", "a"], seed=0, steps=2, guidance=guidance)
    concepts = result.concepts
    assert concepts.words == concepts.tokens == ("red", "dog", "a") and concepts.word_tokens == ((0,), (1,), (2,))
    assert concepts.layers == layers and concepts.layer_set == "concept"
    assert np.array_equal(concepts.timesteps, result.trace.timesteps)
    for m in concepts.layer_maps:
        assert m.shape == (2, 3, grid, grid) and m.dtype == np.float16
        np.testing.assert_allclose(m.astype(np.float32).sum(1), 1.0, atol=2e-3)  # softmax over concepts
    assert word_maps(concepts).shape == (3, side, side)
    assert result.trace.words == ("a", "red", "dog")  # the cross-attention maps of the same generation
    assert _no_hooks(bundle.denoiser)


def test_the_image_is_bit_identical_to_one_without_concepts(case):
    bundle, guidance, *_ = case
    traced = generate_with_concepts(bundle, "a red dog", "red,dog", seed=3, steps=2, guidance=guidance)
    plain = generate_with_attention(bundle, "a red dog", seed=3, steps=2, guidance=guidance)
    assert np.array_equal(traced.image, plain.image)
    for a, b in zip(traced.trace.layer_maps, plain.trace.layer_maps):
        assert np.array_equal(a, b)  # and the cross-attention maps too
    kind_kwargs = {"max_sequence_length": 512} if bundle.kind == "flux" else {}
    bare = bundle.pipe(  # no tracer, no hooks at all
        "a red dog", num_inference_steps=2, guidance_scale=guidance, output_type="np",
        generator=torch.Generator().manual_seed(3), **kind_kwargs,
    ).images[0]  # fmt: skip
    assert np.array_equal(traced.image, (np.clip(bare, 0, 1) * 255).round().astype(np.uint8))


def _explicit_attention(q, k, v):
    """softmax(q kᵀ/√d) v with the matrix formed, (S_q, H, d) x (S_k, H, d) -> (S_q, H·d)."""
    scores = torch.einsum("qhd,khd->hqk", q, k) / q.shape[-1] ** 0.5
    return torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).flatten(1)


def _by_hand(block, x, txt, c, temb, rotary):
    """One joint block's concept map and the concepts' next states, from the block's projections."""
    from diffusers.models.embeddings import apply_rotary_emb

    attn, heads = block.attn, block.attn.heads
    norm_x = block.norm1(x, emb=temb)[0]
    pre_only = getattr(block, "context_pre_only", False)
    norm_t = block.norm1_context(txt, temb) if pre_only else block.norm1_context(txt, emb=temb)[0]
    norm_c, *gates = (block.norm1_context(c, temb),) if pre_only else block.norm1_context(c, emb=temb)

    def proj(h, q, k, v, nq, nk):
        q, k, v = (p(h)[0].unflatten(-1, (heads, -1)) for p in (q, k, v))
        return (nq(q) if nq else q), (nk(k) if nk else k), v

    qx, kx, vx = proj(norm_x, attn.to_q, attn.to_k, attn.to_v, attn.norm_q, attn.norm_k)
    qt, kt, vt = proj(norm_t, attn.add_q_proj, attn.add_k_proj, attn.add_v_proj, attn.norm_added_q, attn.norm_added_k)
    qc, kc, vc = proj(norm_c, attn.add_q_proj, attn.add_k_proj, attn.add_v_proj, attn.norm_added_q, attn.norm_added_k)
    n = qx.shape[0]
    if rotary is None:  # SD3: [image, text]
        o_x = _explicit_attention(qx, torch.cat([kx, kt]), torch.cat([vx, vt]))
    else:  # Flux: [text, image], RoPE over the whole sequence (text and concepts at position 0: the identity)
        q, k = torch.cat([qt, qx]), torch.cat([kt, kx])
        q, k = (apply_rotary_emb(t[None], rotary, sequence_dim=1)[0] for t in (q, k))
        o_x = _explicit_attention(q, k, torch.cat([vt, vx]))[-n:]
        kx = k[-n:]
    o_c = _explicit_attention(qc, torch.cat([kx, kc]), torch.cat([vx, vc]))
    expected = torch.softmax(o_c @ o_x.T, dim=0)  # (C, N)
    if not pre_only:
        g_msa, shift, scale, g_mlp = gates
        c = c + g_msa.unsqueeze(1) * attn.to_add_out(o_c[None])
        c = c + g_mlp.unsqueeze(1) * block.ff_context(block.norm2_context(c) * (1 + scale[:, None]) + shift[:, None])
    return expected, c


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_layer_map_is_the_softmax_of_output_space_dot_products_by_hand(kind):
    denoiser = {"sd3": tiny_sd3, "flux": tiny_flux}[kind]()
    states = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))  # three concepts, text width 16
    kw = inputs(kind, batch=1)
    seen = []
    grab = [
        b.register_forward_pre_hook(lambda m, a, k: seen.append(dict(k)), with_kwargs=True)
        for b in denoiser.transformer_blocks
    ]
    try:
        with torch.no_grad(), ConceptStream(denoiser, kind, states, cfg=False) as stream:
            denoiser(**kw, return_dict=False)
            layers, maps = stream.result()
    finally:
        for handle in grab:
            handle.remove()
    assert _no_hooks(denoiser)
    c = denoiser.context_embedder(states[None])
    with torch.no_grad():
        for block, got, block_in in zip(denoiser.transformer_blocks, maps, seen):
            expected, c = _by_hand(
                block, block_in["hidden_states"], block_in["encoder_hidden_states"], c, block_in["temb"],
                block_in.get("image_rotary_emb"),
            )  # fmt: skip
            assert got.shape == (1, 3, *got.shape[-2:])
            np.testing.assert_allclose(got[0].reshape(3, -1).astype(np.float32), expected.numpy(), atol=2e-3)
    assert len(layers) == len(denoiser.transformer_blocks)


def test_unet_and_pixart_refuse_with_the_reason():
    assert applies("sd3") is None and applies("flux") is None
    assert "text stream" in applies("pixart") and "cross-attention only" in applies("pixart")
    bundle = bundle_from_pipeline(tiny_sd_pipeline(), "tiny-sd", torch.device("cpu"))
    with pytest.raises(ValueError, match=r"unet pipeline; ConceptAttention needs joint-attention \(MMDiT\)"):
        generate_with_concepts(bundle, "a red dog", ["red"], steps=1)
    with pytest.raises(ValueError, match="kind: 'unet'"):
        ConceptStream(bundle.denoiser, "unet", torch.zeros(1, 16))


def test_concepts_default_to_the_prompts_content_words_and_are_checked():
    assert check_concepts(None, ("a", "red", "circle", "left", "of", "a", "Blue", "square")) == (
        "red",
        "circle",
        "blue",
        "square",
    )
    assert check_concepts(" red , circle,", ()) == ("red", "circle")
    with pytest.raises(ValueError, match="named twice"):
        check_concepts(["red", "red"], ())
    with pytest.raises(ValueError, match="no content word"):
        check_concepts("", ("a", "of"))


def test_a_concept_is_the_mean_of_its_own_tokens_states(case):
    bundle = case[0]
    states = concept_states(bundle, ["red", "dog"])
    alone = bundle_kind_states(bundle, "dog")
    first = 1 if bundle.kind == "sd3" else 0  # CLIP's start token, T5 has none
    np.testing.assert_allclose(states[1].numpy(), alone[0, first : first + 3].mean(0).numpy(), atol=1e-5)


def bundle_kind_states(bundle, text):
    from glimpse.attention.kinds import kind_of

    return kind_of(bundle.kind).text_states(bundle.pipe, [text], bundle.max_tokens).float()


def test_hooks_are_removed_when_the_generation_raises(case):
    bundle, guidance, *_ = case

    def boom(step, steps):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        generate_with_concepts(bundle, "a red dog", ["red"], steps=2, guidance=guidance, progress=boom)
    assert _no_hooks(bundle.denoiser)
    attn = bundle.denoiser.transformer_blocks[0].attn
    assert type(attn.processor).__name__ in {"JointAttnProcessor2_0", "FluxAttnProcessor"}


def test_a_hundred_installations_leave_no_hook_and_the_same_output():
    denoiser = tiny_sd3()
    kw = inputs("sd3", batch=2)
    states = torch.randn(2, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        bare = denoiser(**kw, return_dict=False)[0]
        for _ in range(100):
            with ConceptStream(denoiser, "sd3", states) as stream:
                out = denoiser(**kw, return_dict=False)[0]
            assert torch.equal(out, bare)
    assert _no_hooks(denoiser) and stream.result()[1][0].shape == (1, 2, 4, 4)
