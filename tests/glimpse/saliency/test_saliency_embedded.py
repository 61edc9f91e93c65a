"""Correctness on the embedded EfficientNet-Lite0 (the model users see): completeness, the ReLU6 trap, and
Grad-CAM against Captum's LayerGradCam. Kept to a handful of passes (~55 ms each on 2 threads)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam

from glimpse.images import sample_images
from glimpse.saliency import Target, explain
from models.registry import load_classifier


@pytest.fixture(scope="module")
def embedded():
    bundle = load_classifier("efficientnet-lite0", device="cpu")
    img = sample_images()["chelsea"][::2, ::2].copy()
    return bundle, img


def test_deeplift_is_complete(embedded):
    bundle, img = embedded
    (m,) = explain(bundle, img, ["deeplift"])
    assert m.completeness_gap < 0.01


def test_integrated_gradients_approaches_completeness(embedded):
    # ReLU6 kinks along the path make the quadrature converge slowly on this model: measured gaps 8% at
    # 16 Gauss-Legendre steps, 1.4-2.1% at 64-128 steps. The 1 % check runs on the tiny CNN
    # (test_saliency_targets); here we bound the embedded model's gap at 128 steps.
    bundle, img = embedded
    (m,) = explain(bundle, img, [("integrated_gradients", {"steps": 128})], batch_size=32)
    assert m.completeness_gap < 0.03


def test_guided_backprop_and_deconvnet_differ_from_the_gradient(embedded):
    bundle, img = embedded
    grad, gbp = (m.values for m in explain(bundle, img, ["gradient", "guided_backprop"]))
    # Had the rectifier hooks been skipped (the shared-ReLU6 trap), GBP would equal the gradient.
    assert np.corrcoef(grad.ravel(), gbp.ravel())[0, 1] < 0.9
    assert not np.allclose(grad, gbp, rtol=0.05, atol=1e-6)


@pytest.mark.parametrize("layer", ["head_act", "blocks.12"])
def test_gradcam_equals_captum_layer_gradcam(embedded, layer):
    bundle, img = embedded
    (m,) = explain(bundle, img, ["gradcam"], target=Target(281), layer=layer)
    x = bundle.preprocess(img)
    with bundle.lock:
        attr = LayerGradCam(bundle.model, bundle.module(layer)).attribute(x, target=281, relu_attributions=True)
    want = LayerAttribution.interpolate(attr, (224, 224), interpolate_mode="bilinear")[0, 0]
    np.testing.assert_allclose(m.values, want.detach().numpy(), rtol=1e-4, atol=1e-5 * float(want.detach().abs().max()))
    assert torch.is_grad_enabled()
