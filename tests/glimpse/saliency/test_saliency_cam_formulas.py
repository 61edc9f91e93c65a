"""Each CAM variant and NormGrad against its formula, computed by hand from A and g on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glimpse.saliency import explain
from tests.tiny_models import cnn_bundle, image

TARGET = 3


@pytest.fixture(scope="module")
def setup():
    bundle = cnn_bundle()
    img = image(seed=5)
    x = bundle.preprocess(img)
    store = {}
    h = bundle.model.act2.register_forward_hook(lambda m, i, o: store.setdefault("a", o))
    try:
        xg = x.clone().requires_grad_(True)
        score = bundle.model(xg)[0, TARGET]
        g, dx = torch.autograd.grad(score, [store["a"], xg])
    finally:
        h.remove()
    return bundle, img, x, store["a"].detach().double(), g.double(), dx


def up(m: torch.Tensor) -> np.ndarray:
    return F.interpolate(m[None, None].float(), size=(32, 32), mode="bilinear", align_corners=False)[0, 0].numpy()


def expected_maps(a: torch.Tensor, g: torch.Tensor) -> dict[str, np.ndarray]:
    a, g = a[0], g[0]  # (K, h, w)
    relu = torch.relu
    out = {}
    w = g.mean((1, 2))
    out["gradcam"] = relu((w[:, None, None] * a).sum(0))
    out["hirescam"] = relu((g * a).sum(0))
    w = (g * a).sum((1, 2)) / (a.sum((1, 2)) + 1e-7)
    out["xgradcam"] = relu((w[:, None, None] * a).sum(0))
    out["layercam"] = relu((relu(g) * a).sum(0))
    alpha = np.zeros(g.shape)
    gn, an = g.numpy(), a.numpy()
    for k in range(g.shape[0]):
        for i in range(g.shape[1]):
            for j in range(g.shape[2]):
                den = 2 * gn[k, i, j] ** 2 + an[k].sum() * gn[k, i, j] ** 3
                alpha[k, i, j] = gn[k, i, j] ** 2 / den if den != 0 else 0.0
    w = (torch.from_numpy(alpha) * relu(g)).sum((1, 2))
    out["gradcampp"] = relu((w[:, None, None] * a).sum(0))
    out["normgrad"] = torch.sqrt((a**2).sum(0)) * torch.sqrt((g**2).sum(0))
    out["normgrad_selective"] = torch.sqrt((relu(a * g) ** 2).sum(0))
    return {k: up(v) for k, v in out.items()}


def test_cam_variants_match_their_formulas(setup):
    bundle, img, x, a, g, dx = setup
    assert g.abs().amax((0, 1)).std() > 0, "gradients must vary over locations for the test to discriminate"
    expected = expected_maps(a, g)
    maps = {m.method: m.values for m in explain(bundle, img, list(expected), target=TARGET, layer="act2")}
    for name, want in expected.items():
        np.testing.assert_allclose(maps[name], want, rtol=1e-4, atol=1e-5, err_msg=name)
    # ... and the variants really differ on this model
    assert not np.allclose(maps["gradcam"], maps["hirescam"])
    assert not np.allclose(maps["gradcam"], maps["gradcampp"])


def test_gradient_maps_match_their_formulas(setup):
    bundle, img, x, a, g, dx = setup
    maps = {
        m.method: m.values
        for m in explain(bundle, img, ["gradient", "gradient_abs", "input_x_gradient"], target=TARGET)
    }
    np.testing.assert_allclose(maps["gradient"], dx[0].sum(0).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(maps["gradient_abs"], dx[0].abs().amax(0).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(maps["input_x_gradient"], (x * dx)[0].sum(0).numpy(), rtol=1e-5, atol=1e-7)


def test_normgrad_multilayer_is_product_of_normalised_layer_maps(setup):
    bundle, img, x, a, g, dx = setup
    single = {
        layer: explain(bundle, img, ["normgrad"], target=TARGET, layer=layer)[0].values for layer in ("act2", "act1")
    }
    norm = {k: (v - v.min()) / (v.max() - v.min()) for k, v in single.items()}
    (m,) = explain(bundle, img, [("normgrad_multilayer", {"layers": "act2,act1"})], target=TARGET)
    np.testing.assert_allclose(m.values, norm["act2"] * norm["act1"], rtol=1e-4, atol=1e-6)


def test_eigencam_is_the_first_principal_component(setup):
    bundle, img, x, a, g, dx = setup
    (m,) = explain(bundle, img, ["eigencam"], target=TARGET, layer="act2")
    flat = a[0].reshape(a.shape[1], -1).T.numpy()
    flat = flat - flat.mean(0)
    v = np.linalg.svd(flat, full_matrices=False)[2][0]
    proj = (flat @ v).reshape(a.shape[2:])
    want = up(torch.from_numpy(proj))
    if np.corrcoef(want.ravel(), m.values.ravel())[0, 1] < 0:
        want = -want
    np.testing.assert_allclose(m.values, want, rtol=1e-4, atol=1e-5)


def test_scorecam_weights_are_masked_softmax_scores(setup):
    bundle, img, x, a, g, dx = setup
    (m,) = explain(bundle, img, [("scorecam", {"channels": 0})], target=TARGET, layer="act2")
    ak = a[0].float()
    masks = F.interpolate(ak[:, None], size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    lo = masks.flatten(1).min(1).values[:, None, None]
    hi = masks.flatten(1).max(1).values[:, None, None]
    masks = torch.where(hi > lo, (masks - lo) / (hi - lo).clamp_min(1e-12), torch.zeros_like(masks))
    with torch.no_grad():
        w = bundle.model(x * masks[:, None]).softmax(-1)[:, TARGET]
    want = up(torch.relu((w[:, None, None] * ak).sum(0)))
    np.testing.assert_allclose(m.values, want, rtol=1e-4, atol=1e-6)
