"""GradientSHAP drawn from Glimpse's own generators: Captum's formula and conventions (checked against Captum
given Captum's own draws), an explicit per-sample loop with the same draws, exactness on a linear model."""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import GradientShap as CaptumGradientShap

from glimpse.saliency import Target, explain
from glimpse.saliency.contract import Context, ScoreModel
from glimpse.saliency.methods._common import quiet_captum
from glimpse.saliency.methods.gradient_shap import SALT_ALPHA, SALT_NOISE, SALT_PICK, expected_gradients
from tests.tiny_models import cnn_bundle, image, linear_bundle


def context(bundle, *, target: int = 0, seed: int = 0, batch_size: int = 16) -> Context:
    t = Target(target)
    return Context(
        bundle=bundle,
        target=t,
        layer=None,
        seed=seed,
        batch_size=batch_size,
        score=ScoreModel(bundle.model, t),
        prob_score=ScoreModel(bundle.model, t, probs=True),
    )


def draws(ctx, x, n: int, count: int, sigma: float):
    """The draws ``explain`` makes for ``gradient_shap`` (one generator per kind of draw)."""
    baselines = ctx.baseline("uniform", x[:1], count=count)
    total = x.shape[0] * n
    pick = torch.randint(0, count, (total,), generator=ctx.generator(SALT_PICK))
    alpha = torch.rand(total, generator=ctx.generator(SALT_ALPHA))
    eps = sigma * torch.randn((total,) + tuple(x.shape[1:]), generator=ctx.generator(SALT_NOISE))
    return baselines, pick, alpha, eps


def test_matches_captum_given_captums_own_draws():
    # Captum draws baseline indices, then noise, then α (NumPy, torch, NumPy global generators): replay its
    # draws and feed them to our formula. Two inputs check the sample order (input-major, as repeat_interleave).
    bundle = cnn_bundle()
    ctx = context(bundle, target=3, batch_size=4)
    x = torch.cat([bundle.preprocess(image()), bundle.preprocess(image(seed=1))])
    baselines = ctx.baseline("uniform", x[:1], count=5)
    n, sigma = 6, 0.3
    with torch.random.fork_rng():
        numpy_state = np.random.get_state()
        try:
            np.random.seed(3)
            torch.manual_seed(4)
            with quiet_captum():
                want = CaptumGradientShap(ctx.score).attribute(
                    x, baselines=baselines, n_samples=n, stdevs=sigma, target=0
                )
            np.random.seed(3)
            pick = np.random.choice(5, n * 2)
            alpha = np.random.uniform(0.0, 1.0, n * 2)
            torch.manual_seed(4)
            noise = torch.normal(0, torch.tensor(sigma).repeat((n * 2,) + tuple(x.shape[1:])))
        finally:
            np.random.set_state(numpy_state)
    maps, totals = expected_gradients(
        ctx, x, baselines, torch.from_numpy(pick), torch.from_numpy(alpha).float(), lambda sl: noise[sl]
    )
    want = want.detach().double()
    scale = float(want.abs().max())
    np.testing.assert_allclose(maps.numpy(), want.sum(1).numpy(), rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(totals.numpy(), want.flatten(1).sum(1).numpy(), rtol=1e-5, atol=1e-5 * scale)


def test_explain_equals_an_explicit_loop_over_the_same_draws():
    bundle = cnn_bundle()
    img = image(seed=2)
    params = {"samples": 5, "noise": 0.05, "baseline": "uniform", "baselines": 3}
    (m,) = explain(bundle, img, [("gradient_shap", params)], target=2, seed=7, batch_size=2)

    ctx = context(bundle, target=2, seed=7)
    x = bundle.preprocess(img)
    lo, hi = bundle.input_range
    baselines, pick, alpha, eps = draws(ctx, x, 5, 3, 0.05 * (hi - lo))
    want = torch.zeros(x.shape[-2:], dtype=torch.float64)
    for i in range(5):
        b = baselines[pick[i]]
        xt = x[0] + eps[i]
        point = (b + alpha[i] * (xt - b)).unsqueeze(0).requires_grad_(True)
        (grad,) = torch.autograd.grad(ctx.score(point)[0, 0], point)
        want += ((xt - b) * grad[0]).sum(0).double()
    want /= 5
    np.testing.assert_allclose(m.values, want.numpy(), rtol=1e-4, atol=1e-6 * float(want.abs().max()))
    # The same draws whatever the batch size.
    (again,) = explain(bundle, img, [("gradient_shap", params)], target=2, seed=7, batch_size=16)
    np.testing.assert_allclose(again.values, m.values, rtol=1e-5, atol=1e-7 * float(want.abs().max()))


def test_exact_on_a_linear_model():
    # ∇S = w everywhere, so with no noise and one baseline GradientSHAP is w ⊙ (x − b): IG, complete.
    bundle = linear_bundle()
    img = image()
    x = bundle.preprocess(img)[0]
    w = bundle.model.fc.weight[1].view(3, 32, 32)
    black = (torch.tensor([0.0, 0.0, 0.0]) - 0.5).view(3, 1, 1) / 0.25
    (m,) = explain(bundle, img, [("gradient_shap", {"noise": 0.0, "baseline": "black"})], target=1, seed=1)
    want = (w * (x - black)).sum(0).numpy()
    np.testing.assert_allclose(m.values, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
    assert m.completeness_gap < 1e-5


def test_linear_model_each_draw_is_exact_and_the_sum_complete_in_expectation():
    # Each sample sums to S(x̃_i) − S(b_i) exactly; in expectation Σφ = S(x) − mean_k S(b_k) (E[w·ε] = 0).
    bundle = linear_bundle()
    img = image()
    n, count, noise = 400, 8, 0.05
    params = {"samples": n, "noise": noise, "baseline": "uniform", "baselines": count}
    (m,) = explain(bundle, img, [("gradient_shap", params)], target=1, seed=3)

    ctx = context(bundle, target=1, seed=3)
    x = bundle.preprocess(img)
    lo, hi = bundle.input_range
    baselines, pick, alpha, eps = draws(ctx, x, n, count, noise * (hi - lo))

    def s(t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return ctx.score(t)[:, 0].double()

    per_draw = (s(x + eps) - s(baselines[pick])).numpy()
    expected = float(s(x)[0] - s(baselines).mean())
    total = float(m.values.astype(np.float64).sum())
    np.testing.assert_allclose(total, per_draw.mean(), rtol=1e-4)
    w = bundle.model.fc.weight[1].view(3, 32, 32)
    want = (w * (x[0] + eps.mean(0) - baselines[pick].mean(0))).sum(0).numpy()
    np.testing.assert_allclose(m.values, want, rtol=1e-3, atol=1e-5 * np.abs(want).max())
    standard_error = per_draw.std(ddof=1) / np.sqrt(n)
    assert abs(total - expected) < 4 * standard_error
    # The gap shown is this finite-sample one.
    assert np.isclose(m.completeness_gap, abs(total - expected) / abs(expected), rtol=1e-3)
