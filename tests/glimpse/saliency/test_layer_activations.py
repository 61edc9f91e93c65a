"""Which layers hold non-negative activations, as Grad-CAM++'s weights assume."""

from __future__ import annotations

import pytest

from glimpse.images import sample_images
from glimpse.saliency.layers import layer_activations
from models.registry import load_classifier


@pytest.fixture(scope="module")
def embedded():
    return load_classifier(), sample_images()["chelsea"]


def test_the_suggested_layers_start_with_post_activation_maps(embedded):
    bundle, image = embedded
    first = [layer_activations(bundle, image, layer) for layer in bundle.target_layers[:5]]
    assert all(s.nonnegative and s.negative_channels == 0 for s in first)


def test_a_block_output_has_negative_channels(embedded):
    bundle, image = embedded
    summary = layer_activations(bundle, image, "blocks.8")
    assert summary.channels == 112 and summary.negative_channels > 0 and not summary.nonnegative


def test_unknown_layer_names_the_suggestions(embedded):
    bundle, image = embedded
    with pytest.raises(ValueError, match="suggested: head_act"):
        layer_activations(bundle, image, "nope")
