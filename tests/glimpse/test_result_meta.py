"""Every lens's result says how it was made: one ``meta()`` of plain JSON values, with the libraries' versions."""

from __future__ import annotations

import json

import numpy as np

from glimpse.complexity import complexity_features
from glimpse.complexity.maps import complexity_maps
from glimpse.images import sample_images
from glimpse.saliency import explain
from glimpse.versions import library_versions
from tests.glimpse.saliency.saliency_models import cnn_bundle, image


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
