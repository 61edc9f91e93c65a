"""LIME's kernel and regulariser are lime's (formulas written out, and numbers from lime 0.2.0.1 itself);
KernelSHAP draws coalitions with the Shapley kernel and is exact on a model additive over superpixels."""

from __future__ import annotations

from math import comb

import numpy as np
import torch

from glimpse.saliency import explain
from glimpse.saliency.methods.surrogate import Lime, lime_kernel, shapley_coalitions, weighted_ridge
from tests.tiny_models import image, linear_bundle

# A small neighbourhood (first row: the image itself, one row: all hidden) and lime 0.2.0.1's answer for it:
# LimeImageExplainer() (kernel_width 0.25, default kernel) weights from sklearn's cosine distances, and
# LimeBase.explain_instance_with_data(..., num_features=100000) with its default Ridge(alpha=1) (scikit-learn
# 1.9.1), computed once in a separate environment (lime is not a Glimpse dependency).
Z = np.array(
    [[1, 1, 1, 1], [0, 1, 1, 0], [1, 0, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0],
     [0, 1, 0, 1], [1, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [1, 0, 1, 1], [0, 1, 1, 1]],
    dtype=np.float64,
)  # fmt: skip
Y = np.array([2.0, 0.5, 1.25, 1.0, 0.75, -0.5, 1.5, 1.75, 0.25, -1.0, 1.0, 0.0])
LIME_WEIGHTS = np.array(
    [1.0, 5.0343961675554916e-01, 5.0343961675554916e-01, 5.0343961675554916e-01, 5.0343961675554916e-01,
     5.0343961675554916e-01, 5.0343961675554916e-01, 8.6623976880682851e-01, 1.3533528323661267e-01,
     3.3546262790251185e-04, 8.6623976880682851e-01, 8.6623976880682851e-01]
)  # fmt: skip
LIME_COEF = np.array([0.5023255016320125, 0.4198575468862336, -0.13288487962664114, 0.26469544728030436])
LIME_INTERCEPT = 0.3387907792668152


def test_lime_kernel_is_limes():
    # lime_image: kernel(d) = sqrt(exp(−d² / w²)), w = 0.25, d = sklearn's cosine distance to the all-ones row
    # (1 − z·1 / (‖z‖ ‖1‖); a zero row has distance 1).
    assert Lime.kernel_width == 0.25
    norms = np.linalg.norm(Z, axis=1)
    cosine = np.where(norms > 0, Z.sum(1) / np.where(norms > 0, norms, 1.0) / np.sqrt(Z.shape[1]), 0.0)
    d = 1.0 - cosine
    want = np.sqrt(np.exp(-(d**2) / 0.25**2))
    np.testing.assert_allclose(lime_kernel(Z, 0.25), want, rtol=1e-12)
    np.testing.assert_allclose(lime_kernel(Z, 0.25), LIME_WEIGHTS, rtol=1e-12)
    # Not the square exp(−d²/w²) that this code used before.
    assert not np.allclose(lime_kernel(Z, 0.25), np.exp(-(d**2) / 0.25**2))


def test_lime_regulariser_is_limes_ridge():
    # scikit-learn's Ridge(alpha, fit_intercept=True) with sample weights, written out: centre X and y with the
    # weighted means, solve (X_cᵀ W X_c + α I) β = X_cᵀ W y_c, intercept = ȳ − x̄·β (the intercept unpenalised).
    assert Lime.ridge == 1.0
    w = lime_kernel(Z, 0.25)
    xbar = (w[:, None] * Z).sum(0) / w.sum()
    ybar = (w * Y).sum() / w.sum()
    xc, yc = Z - xbar, Y - ybar
    beta = np.linalg.solve(xc.T @ (w[:, None] * xc) + 1.0 * np.eye(4), xc.T @ (w * yc))
    b, coef = weighted_ridge(Z, Y, w, 1.0)
    np.testing.assert_allclose(coef, beta, rtol=1e-12)
    assert np.isclose(b, ybar - xbar @ beta, rtol=1e-12)
    np.testing.assert_allclose(coef, LIME_COEF, rtol=1e-10)
    assert np.isclose(b, LIME_INTERCEPT, rtol=1e-10)


def test_shapley_coalitions_follow_the_shapley_kernel():
    # π(z) = (d − 1) / (C(d, |z|) |z| (d − |z|)): a size k has total mass C(d, k) π = (d − 1) / (k (d − k)), and
    # each coalition of that size is equally likely.
    d, n = 6, 60_000
    z = shapley_coalitions(np.random.default_rng(0), d, n)
    sizes = z.sum(1).astype(int)
    assert sizes.min() >= 1 and sizes.max() <= d - 1  # empty and full coalitions enter as the constraint
    kernel = {k: (d - 1) / (comb(d, k) * k * (d - k)) for k in range(1, d)}
    mass = np.array([comb(d, k) * kernel[k] for k in range(1, d)])
    freq = np.bincount(sizes, minlength=d)[1:] / n
    np.testing.assert_allclose(freq, mass / mass.sum(), atol=0.006)
    pairs = z[sizes == 2]
    per_pair = np.unique(pairs, axis=0, return_counts=True)[1]
    assert len(per_pair) == comb(d, 2)
    assert per_pair.max() / per_pair.min() < 1.3


def test_kernel_shap_is_exact_on_a_linear_model():
    # Hiding superpixel j of a linear model changes S by Σ_{u∈j} w_u (x_u − black_u): S is additive over
    # superpixels, so its Shapley values are those sums, whatever coalitions were drawn.
    bundle = linear_bundle()
    img = image()
    (m,) = explain(bundle, img, [("kernel_shap", {"samples": 64, "segments": 8})], target=2, seed=0)
    labels = m.extras["superpixels"]
    x = bundle.preprocess(img)[0]
    black = torch.full((3, 1, 1), -0.5 / 0.25)
    contrib = (bundle.model.fc.weight[2].view(3, 32, 32) * (x - black)).sum(0).double().numpy()
    for j in np.unique(labels):
        inside = labels == j
        np.testing.assert_allclose(m.values[inside], contrib[inside].sum(), rtol=1e-4, atol=1e-5)
    assert m.completeness_gap < 1e-5
