"""Every lens's result says how it was made: one ``meta()`` of plain JSON values, with the libraries' versions."""

from __future__ import annotations

import json

import numpy as np

from glimpse.attention.trace import AttentionTrace
from glimpse.complexity import complexity_features
from glimpse.complexity.maps import complexity_maps
from glimpse.images import sample_images
from glimpse.saliency import explain
from glimpse.versions import library_versions
from tests.tiny_models import cnn_bundle, image


def test_a_saliency_map_says_how_it_was_made():
    (m,) = explain(cnn_bundle(), image(), [("smoothgrad", {"samples": 2})], target=1, seed=4)
    meta = json.loads(json.dumps(m.meta()))  # plain JSON
    assert meta["lens"] == "saliency" and meta["method"] == "smoothgrad" and meta["seed"] == 4
    assert meta["params"]["samples"] == 2 and meta["target"] == 1 and meta["model_id"] == "tiny-cnn"
    assert meta["versions"] == library_versions() and "torch" in meta["versions"]
    assert "versions" not in m.meta(versions=False)


def test_complexity_results_say_how_they_were_made():
    pixels = sample_images()["coffee"][:64, :64]
    feats = complexity_features(pixels)
    meta = json.loads(json.dumps(feats.meta()))
    assert meta["lens"] == "complexity" and meta["shape"] == [64, 64] and meta["scales"] == [1, 2, 4, 8]
    maps = complexity_maps(pixels, bits=3, window=8)
    assert maps.meta()["bits"] == 3 and maps.meta()["window"] == 8 and maps.meta()["versions"]["numpy"]
    assert np.isclose(sum(maps.meta()["weights"]), 1.0)


def test_an_attention_trace_says_how_it_was_made():
    trace = AttentionTrace(
        prompt="a red circle",
        tokens=("[CLS]", "a", "red", "circle", "[SEP]"),
        words=("a", "red", "circle"),
        word_tokens=((1,), (2,), (3,)),
        timesteps=np.array([999, 499]),
        layers=("down.attn2", "up.attn2"),
        layer_maps=(np.zeros((2, 5, 4, 4), np.float16), np.zeros((2, 5, 8, 8), np.float16)),
        model_id="shapes-t2i",
        seed=3,
        steps=2,
        guidance=1.5,
        image_shape=(32, 32),
        grid=32,
        layer_set="daam",
    )
    meta = json.loads(json.dumps(trace.meta()))
    assert meta["lens"] == "attention" and meta["prompt"] == "a red circle" and meta["seed"] == 3
    assert (meta["steps"], meta["guidance"], meta["layers"], meta["grid"]) == (2, 1.5, 2, 32)
    assert meta["image_shape"] == [32, 32] and meta["layer_set"] == "daam" and meta["heads"] is False
    assert meta["versions"] == library_versions() and "versions" not in trace.meta(versions=False)
