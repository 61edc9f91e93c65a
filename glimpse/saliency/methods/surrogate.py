"""Linear surrogates on superpixels: LIME and KernelSHAP.

Features are SLIC superpixels (Achanta et al. 2012, scikit-image) of the model input; a sample ξ ∈ {0,1}^d
keeps the superpixels with ξ_j = 1 and blacks out the rest; the scores ``f(x ⊙ ξ)`` (target logit) are
fitted with a weighted linear model and each pixel shows its superpixel's coefficient.

- LIME (Ribeiro, Singh & Guestrin, KDD 2016), as the lime library's image explainer (0.2) does it:
  ξ ~ Bernoulli(0.5)^d with the first sample the image itself (ξ = 1), weights
  ``π(ξ) = sqrt(exp(−D(1, ξ)² / w²)) = exp(−D² / (2 w²))`` with D the cosine distance between ξ and the
  all-ones vector, ``D = 1 − sqrt(|ξ| / d)``, and kernel width w = 0.25 (``LimeImageExplainer``'s kernel and
  default width); then ridge regression with an unpenalised intercept and α = 1 (lime's default
  ``Ridge(alpha=1, fit_intercept=True)`` with ``sample_weight=π``, which keeps every superpixel at its default
  ``num_features``): ``min_{b,β} Σ_i π_i (y_i − b − ξ_i·β)² + α ‖β‖²``.
  Unlike lime's defaults: superpixels are SLIC, not quickshift; a hidden superpixel is black, not its mean
  colour; the fitted score is the logit, not the probability lime's classifier functions usually return.
- KernelSHAP (Lundberg & Lee, NeurIPS 2017): coalitions drawn with probability proportional to the Shapley
  kernel ``π(ξ) = (d − 1) / (C(d, |ξ|) |ξ| (d − |ξ|))``, i.e. a size k ∈ 1..d−1 with ``P(k) ∝ (d − 1) / (k (d − k))``
  then k superpixels uniformly (Captum's sampling), so the samples carry equal weight; the empty and full
  coalitions (infinite kernel weight) enter as the efficiency constraint ``Σ φ = f(x) − f(black)``, imposed
  exactly by eliminating one coefficient as shap's KernelExplainer does (Captum approximates it with a weight
  of 10⁶ on those two samples). Not done here: shap's paired (complement) sampling, its full enumeration of
  small coalition sizes, and its l1 feature selection.

Captum and lime fit through scikit-learn's linear models, which Glimpse does not ship; the closed-form weighted
least squares here solves the same problems exactly, and the draws come from ``np.random.default_rng(seed)``.
"""

from __future__ import annotations

import numpy as np
import torch

from glimpse.saliency.base import Cost, MethodInfo
from glimpse.saliency.contract import Attribution, Method
from glimpse.saliency.methods._common import score_of


def superpixels(ctx, x: torch.Tensor, segments: int) -> np.ndarray:
    """SLIC labels (H, W), 0..d−1, on the model input mapped back to [0, 1] RGB."""
    return superpixels_of(ctx.bundle, x, segments)


def superpixels_of(bundle, x: torch.Tensor, segments: int) -> np.ndarray:
    """SLIC labels (H, W), 0..d−1, of the model input ``x`` (1, 3, H, W) of ``bundle``, mapped back to RGB."""
    from skimage.segmentation import slic

    mean = torch.tensor(bundle.mean, device=x.device).view(3, 1, 1)
    std = torch.tensor(bundle.std, device=x.device).view(3, 1, 1)
    rgb = (x[0] * std + mean).clamp(0, 1).permute(1, 2, 0).cpu().numpy().astype(np.float64)
    labels = slic(rgb, n_segments=segments, compactness=10.0, start_label=0)
    _, labels = np.unique(labels, return_inverse=True)
    return labels.reshape(rgb.shape[:2]).astype(np.int64)


def _scores(ctx, x: torch.Tensor, labels: np.ndarray, z: np.ndarray) -> np.ndarray:
    """f(x ⊙ ξ + black ⊙ (1 − ξ)) for each row ξ of ``z`` (n, d), batched."""
    lab = torch.from_numpy(labels).to(x.device)
    black = ctx.black(x)
    zt = torch.from_numpy(z).to(x.device, x.dtype)
    out = []
    chunks = ctx.chunks(len(z))
    with torch.no_grad():
        for j, sl in enumerate(chunks):
            keep = zt[sl][:, lab].unsqueeze(1)  # (m, 1, H, W)
            out.append(ctx.score(x * keep + black * (1 - keep))[:, 0].to("cpu", torch.float64))
            ctx.progress((j + 1) / len(chunks))
    return torch.cat(out).numpy()


def _paint(labels: np.ndarray, coef: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(coef[labels].astype(np.float32)).unsqueeze(0)


def lime_kernel(z: np.ndarray, width: float) -> np.ndarray:
    """lime's image kernel ``sqrt(exp(−D² / width²))`` of binary rows ``z`` (n, d), D = cosine distance to 1."""
    d = z.shape[1]
    on = z.sum(1)
    dist = 1.0 - on / (np.sqrt(np.maximum(on, 1e-12)) * np.sqrt(d))  # an empty row is at distance 1
    return np.sqrt(np.exp(-(dist**2) / width**2))


def weighted_ridge(z: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> tuple[float, np.ndarray]:
    """``argmin_{b,β} Σ_i w_i (y_i − b − z_i·β)² + alpha ‖β‖²`` (intercept b unpenalised), as scikit-learn's
    ``Ridge(alpha, fit_intercept=True).fit(z, y, sample_weight=w)``. Returns (b, β)."""
    design = np.hstack([np.ones((len(z), 1)), z])
    sw = np.sqrt(w)[:, None]
    a = design * sw
    reg = alpha * np.eye(design.shape[1])
    reg[0, 0] = 0.0
    coef = np.linalg.solve(a.T @ a + reg, a.T @ (y * sw[:, 0]))
    return float(coef[0]), coef[1:]


def shapley_coalitions(rng: np.random.Generator, d: int, n: int) -> np.ndarray:
    """(n, d) binary coalitions drawn with probability ∝ the Shapley kernel (sizes 1..d−1; d >= 2)."""
    sizes = np.arange(1, d)
    p = (d - 1) / (sizes * (d - sizes))
    k = rng.choice(sizes, size=n, p=p / p.sum())
    z = np.zeros((n, d))
    for i, ki in enumerate(k):
        z[i, rng.choice(d, size=ki, replace=False)] = 1.0
    return z


def superpixel_units(params: dict) -> str:
    """LIME's coefficients and KernelSHAP's Shapley values are both the change of the target logit when a
    superpixel is kept rather than blacked out, on the same SLIC superpixels for the same ``segments``: one
    unit, which is per superpixel (each pixel shows its superpixel's value), not per pixel."""
    return f"ΔS per superpixel (SLIC, {int(params['segments'])} segments)"


def _check(name: str, params: dict) -> None:
    if params["samples"] < 2 or params["segments"] < 2:
        raise ValueError(f"params: {name}.samples and .segments must be >= 2")


def _info(name: str, label: str, explanation: str, citation: str, **kw) -> MethodInfo:
    """A surrogate over SLIC superpixels: random samples of kept and blacked-out superpixels (slow, seeded)."""
    return MethodInfo(
        name=name,
        label=label,
        family="perturbation",
        params={"samples": 200, "segments": 50},
        explanation=explanation,
        citation=citation,
        slow=True,
        stochastic=True,
        units="ΔS per superpixel",
        **kw,
    )


class _Surrogate(Method):
    """A linear model of the class score on which superpixels were kept: one value per superpixel."""

    batchable = False

    def units(self, params):
        return superpixel_units(params)


class Lime(_Surrogate):
    info = _info(
        "lime",
        "LIME",
        "Blacks out random sets of superpixels and fits a ridge model (α = 1) of the class score on which\n"
        "were kept, weighting each sample by lime's closeness kernel; each superpixel shows its coefficient.",
        'Ribeiro, Singh & Guestrin, "Why Should I Trust You?": Explaining the Predictions of Any Classifier, KDD 2016',
    )
    #: lime's ``LimeImageExplainer`` default kernel width and ``Ridge`` penalty (see the module docstring).
    kernel_width = 0.25
    ridge = 1.0

    def cost(self, params, where):
        return Cost(forward=int(params["samples"]), backward=0)  # one forward per sample (the first: the image)

    def attribute(self, ctx, x, params):
        _check("lime", params)
        labels = superpixels(ctx, x, params["segments"])
        d = int(labels.max()) + 1
        rng = np.random.default_rng(ctx.seed)
        z = (rng.random((params["samples"], d)) < 0.5).astype(np.float64)
        z[0] = 1.0  # the image itself, as lime does
        y = _scores(ctx, x, labels, z)
        _, coef = weighted_ridge(z, y, lime_kernel(z, self.kernel_width), self.ridge)
        return Attribution(_paint(labels, coef), extras={"superpixels": labels.astype(np.int32)})


class KernelShap(_Surrogate):
    info = _info(
        "kernel_shap",
        "KernelSHAP",
        "Shapley values of superpixels estimated by a linear fit on random coalitions drawn with the\n"
        "Shapley kernel; the values add up to S(image) − S(black image).",
        "Lundberg & Lee, A Unified Approach to Interpreting Model Predictions, NeurIPS 2017",
        has_completeness=True,
    )

    def cost(self, params, where):
        # f(x) and f(black), then one forward per coalition; an image SLIC leaves in one superpixel needs no
        # coalitions (2 in all), which a noise tunnel's heavy noise can cause.
        return Cost(forward=2 + int(params["samples"]), backward=0)

    def attribute(self, ctx, x, params):
        _check("kernel_shap", params)
        labels = superpixels(ctx, x, params["segments"])
        d = int(labels.max()) + 1
        f_x = float(score_of(ctx, x)[0])
        f_0 = float(score_of(ctx, ctx.black(x))[0])
        delta = f_x - f_0
        if d == 1:
            coef = np.array([delta])
        else:
            z = shapley_coalitions(np.random.default_rng(ctx.seed), d, params["samples"])
            y = _scores(ctx, x, labels, z) - f_0
            # Σφ = delta: substitute φ_d = delta − Σ_{j<d} φ_j and solve for the rest.
            a = z[:, :-1] - z[:, -1:]
            b = y - z[:, -1] * delta
            head, *_ = np.linalg.lstsq(a, b, rcond=None)
            coef = np.append(head, delta - head.sum())
        return Attribution(
            _paint(labels, coef),
            total=torch.tensor([float(coef.sum())]),
            expected=torch.tensor([delta]),
            extras={"superpixels": labels.astype(np.int32)},
        )
