"""load_pipeline: the embedded model, local save_pretrained folders, kind detection and clear errors."""

from __future__ import annotations

import pytest
import torch

from models.diffusion import EMBEDDED_T2I, DiffusionBundle, detect_kind, load_pipeline
from models.registry import ModelLoadError
from models.shapes_pipeline import DEFAULT_GUIDANCE_SCALE


@pytest.fixture(scope="module")
def embedded() -> DiffusionBundle:
    return load_pipeline(EMBEDDED_T2I, device="cpu")


def test_embedded_model_loads_offline(embedded):
    assert embedded.kind == "unet" and embedded.model_id == EMBEDDED_T2I
    assert embedded.max_tokens == 16 and embedded.resolution == 32
    assert {"red", "green", "blue", "yellow", "circle", "square", "triangle", "left", "right", "above", "below"} <= set(
        embedded.vocabulary
    )
    assert embedded.denoiser is embedded.pipe.unet and embedded.device == torch.device("cpu")
    assert not any(p.requires_grad for p in embedded.pipe.unet.parameters())
    assert (embedded.default_steps, embedded.default_guidance) == (25, DEFAULT_GUIDANCE_SCALE)


def test_local_folder_loads_through_the_same_path(tmp_path):
    from tests.tiny_models import tiny_shapes_pipeline

    tiny_shapes_pipeline().save_pretrained(tmp_path)
    bundle = load_pipeline(str(tmp_path), device="cpu")
    assert bundle.kind == "unet" and bundle.resolution == 16 and bundle.vocabulary is not None


def test_kind_is_detected_from_the_denoiser_class():
    from types import SimpleNamespace

    from tests.tiny_models import tiny_pixart, tiny_sd3

    assert detect_kind(SimpleNamespace(unet=torch.nn.Identity())) == "unet"
    assert detect_kind(SimpleNamespace(unet=None, transformer=tiny_pixart())) == "pixart"
    assert detect_kind(SimpleNamespace(transformer=tiny_sd3())) == "sd3"
    with pytest.raises(ModelLoadError, match="'Linear' is not supported"):
        detect_kind(SimpleNamespace(transformer=torch.nn.Linear(1, 1)))


def test_hub_model_on_cpu_says_it_needs_a_gpu():
    with pytest.raises(ModelLoadError, match="needs a GPU.*shapes-t2i"):
        load_pipeline("stabilityai/stable-diffusion-2-1", device="cpu")


def test_hub_model_offline_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="could not load 'glimpse-test/not-a-model'.*download it first"):
        load_pipeline("glimpse-test/not-a-model", device="cpu", allow_cpu=True)


def test_empty_id():
    with pytest.raises(ModelLoadError, match="empty id"):
        load_pipeline("  ", device="cpu")
