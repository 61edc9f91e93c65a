"""``python -m glimpse attention --concepts A,B`` / ``--concept-attention``: concepts.npz beside attention.npz on an
SD3 pipeline (tiny configs, no download); a UNet model refuses in one line naming the reason."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import models.diffusion
from glimpse.attention.export import load_attention_npz
from glimpse.cli import main
from models.diffusion import bundle_from_pipeline
from tests.tiny_models import one_thread, tiny_sd3_pipeline

_threads = pytest.fixture(autouse=True, scope="module")(one_thread)


@pytest.fixture
def tiny_sd3(monkeypatch):
    bundle = bundle_from_pipeline(tiny_sd3_pipeline(), "tiny-sd3", torch.device("cpu"))
    monkeypatch.setattr(models.diffusion, "load_pipeline", lambda model_id, device="auto": bundle)
    return bundle


def test_concepts_flag_writes_concept_maps_beside_the_word_maps(tiny_sd3, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["attention", "--model", "tiny-sd3", "--prompt", "a red dog", "--steps", "2", "--out", str(out)]
    assert main([*args, "--concepts", "red,dog"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["words"] == ["a", "red", "dog"] and summary["concepts"] == ["red", "dog"]
    assert summary["concept_layers"] == ["transformer_blocks.0.attn", "transformer_blocks.1.attn"]
    assert [p["word"] for p in summary["concept_peaks"]] == ["red", "dog"]
    saved = load_attention_npz(out / "concepts.npz")
    assert list(saved["words"]) == ["red", "dog"] and saved["maps"].shape == (2, 16, 16)
    assert saved["meta"]["layer_set"] == "concept"
    # softmax over the concepts at every step and block: the two summed maps add up to the number of steps
    np.testing.assert_allclose(saved["maps"].sum(0), 2.0, atol=0.05)
    assert (out / "attention.npz").is_file()
    assert main([*args, "--concept-attention"]) == 0  # the prompt's content words
    assert json.loads(capsys.readouterr().out)["concepts"] == ["red", "dog"]


def test_a_unet_model_refuses_concepts_in_one_line(tmp_path, capsys):
    code = main(["attention", "--prompt", "a red circle", "--concepts", "red", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "ConceptAttention needs joint-attention (MMDiT) blocks" in err and "\n" not in err
    assert not (tmp_path / "image.png").exists()
