"""generate_with_attention through a real diffusers FluxPipeline built from tiny configs (T5 words, joint blocks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glimpse.attention import generate_with_attention, word_maps
from models.diffusion import bundle_from_pipeline
from tests.tiny_models import one_thread, tiny_flux_pipeline

_threads = pytest.fixture(autouse=True, scope="module")(one_thread)


def test_flux_generation_records_double_and_single_stream_blocks():
    bundle = bundle_from_pipeline(tiny_flux_pipeline(), "tiny-flux", torch.device("cpu"))
    assert bundle.kind == "flux" and bundle.max_tokens == 512 and bundle.resolution == 32
    result = generate_with_attention(bundle, "a red dog", seed=0, steps=2, guidance=3.5)
    trace = result.trace
    assert result.image.shape == (32, 32, 3)
    assert trace.tokens == ("▁a", "▁red", "▁d", "o", "g", "</s>") and trace.word_tokens == ((0,), (1,), (2, 3, 4))
    assert trace.layers == ("transformer_blocks.0.attn", "single_transformer_blocks.0.attn")
    assert all(m.shape == (2, 6, 8, 8) for m in trace.layer_maps)
    # the image→text block of a joint softmax: positive, and below one per image position
    for m in trace.layer_maps:
        rows = m.astype(np.float32).sum(1)
        assert np.all(m >= 0) and np.all(rows < 1.0)
    assert word_maps(trace).shape == (3, 32, 32)
