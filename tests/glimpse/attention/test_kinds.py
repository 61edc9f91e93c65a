"""The model-kind adapters: detection, the per-kind facts generation needs, and a new kind as one registry line."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from glimpse.attention import KINDS, AttentionTracer, detect, kind_of
from glimpse.attention.daam import DAAM_BLOCKS, daam_skipped_sides
from glimpse.attention.kinds import UNet
from tests.tiny_models import TEXT_LEN, call, inputs, one_thread, tiny_flux, tiny_pixart, tiny_unet

_threads = pytest.fixture(autouse=True, scope="module")(one_thread)


def test_detection_follows_the_denoiser():
    assert detect(SimpleNamespace(unet=tiny_unet())).name == "unet"
    assert detect(SimpleNamespace(unet=None, transformer=tiny_pixart())).name == "pixart"
    assert detect(SimpleNamespace(transformer=tiny_flux())).name == "flux"
    assert detect(SimpleNamespace(transformer=torch.nn.Linear(1, 1))) is None
    with pytest.raises(ValueError, match="kind: unknown 'dit'; known: unet, pixart, sd3, flux"):
        kind_of("dit")
    assert kind_of(KINDS["sd3"]) is KINDS["sd3"]


def test_guidance_layout_text_length_and_call_options():
    # CFG halves above a scale of one; Flux is guidance-distilled and never has them
    assert [KINDS[k].cfg(1.0) for k in KINDS] == [False] * 4
    assert [KINDS[k].cfg(4.0) for k in KINDS] == [True, True, True, False]
    assert KINDS["flux"].text_len(512) == 512 and KINDS["sd3"].text_len(77) is None
    assert KINDS["flux"].call_kwargs(512) == {"max_sequence_length": 512}
    assert KINDS["pixart"].call_kwargs(120) == {"clean_caption": False} and KINDS["unet"].call_kwargs(77) == {}
    pipe = SimpleNamespace(tokenizer="clip", tokenizer_2="t5")
    assert [KINDS[k].tokenizer(pipe) for k in KINDS] == ["clip", "clip", "clip", "t5"]
    assert KINDS["pixart"].max_tokens(pipe) == 120 and KINDS["flux"].max_tokens(pipe) == 512
    assert [KINDS[k].head_sums for k in KINDS] == [True, False, False, False]


def test_unet_layer_plan_is_daams_for_latent_models_and_the_image_grid_for_pixel_space():
    latent, pixel = SimpleNamespace(vae=object()), SimpleNamespace()
    unet = KINDS["unet"]
    plan = unet.layer_plan(latent, 512, "daam")
    assert (plan.blocks, plan.exclude, plan.grid) == (DAAM_BLOCKS, daam_skipped_sides(64), 64)
    assert unet.layer_plan(latent, 512, "daam", resolutions=[16]).exclude == ()
    assert unet.layer_plan(latent, 768, "all") == type(plan)(grid=96)
    assert unet.layer_plan(pixel, 32, "daam") == type(plan)(DAAM_BLOCKS, (), 32)
    assert KINDS["sd3"].layer_plan(latent, 1024, "daam") == type(plan)()  # transformers: every layer, no grid


class _MidBlockOnly(UNet):
    """A toy kind: a UNet whose mid block alone is traced."""

    name = "unet-mid"

    def traces(self, module, layer):
        return super().traces(module, layer) and layer.startswith("mid_block")


def test_a_new_kind_is_one_adapter_and_one_registry_line(monkeypatch):
    monkeypatch.setitem(KINDS, "unet-mid", _MidBlockOnly())
    model = tiny_unet()
    with AttentionTracer(model, "unet-mid", image_hw=(1, 1), text_len=TEXT_LEN) as tracer:
        call(model, "unet", inputs("unet"))
    layers, maps = tracer.result()
    assert layers == ("mid_block.attentions.0.transformer_blocks.0.attn2",) and maps[0].shape[:2] == (1, TEXT_LEN)
