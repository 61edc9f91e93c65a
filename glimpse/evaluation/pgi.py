"""PGI and PGU (Han, Srinivas & Lakkaraju, "Which Explanation Should I Choose?", NeurIPS 2022; OpenXAI) on
image regions.

The features of an image are its superpixels (SLIC on the model input); a map's attribution to a superpixel
is the sum of the map over it, and the top-k features are the k-fraction of superpixels with the largest
``|attribution|``. Then, with f the model's softmax probability of the explained class,

- **PGI** (prediction gap on important features) = mean over draws of ``|f(x') − f(x)|`` when only the top-k
  superpixels are perturbed: higher is better (the map found what the model uses);
- **PGU** (… on unimportant features) = the same when every other superpixel is perturbed: lower is better.

Perturbations: ``"gaussian"`` adds N(0, σ²) noise (σ a fraction of the input's value range, OpenXAI's 0.1 by
default) to every pixel of the perturbed superpixels, ``draws`` times; ``"baseline"`` sets them to black once
(LFA's binary neighbourhood). The paper's point: no method wins every neighbourhood, so the table shows each
method at each k.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from glimpse.evaluation.deletion import substrate
from glimpse.evaluation.result import Images, PanelResult, method_keys, summary
from glimpse.evaluation.stats import same_settings

PERTURBATIONS = ("gaussian", "baseline")
KS: tuple[float, ...] = (0.1, 0.25, 0.5)


def top_segments(values: np.ndarray, labels: np.ndarray, k: float) -> np.ndarray:
    """bool (segments,): the ``k`` fraction (at least one) of superpixels with the largest |summed attribution|.

    >>> top_segments(np.array([[5.0, -9.0], [1.0, 0.0]]), np.array([[0, 1], [2, 2]]), 0.3).tolist()
    [False, True, False]
    """
    if not 0 < k <= 1:
        raise ValueError(f"k: a fraction in (0, 1], got {k}")
    n = int(labels.max()) + 1
    score = np.abs(np.bincount(labels.ravel(), weights=np.asarray(values, np.float64).ravel(), minlength=n))
    count = max(1, math.ceil(k * n - 1e-9))
    order = np.argsort(-score, kind="stable")[:count]
    out = np.zeros(n, bool)
    out[order] = True
    return out


@dataclass(frozen=True)
class PgiResult(PanelResult):
    """``pgi[j, i, c]`` / ``pgu[j, i, c]``: method j, image i, k = ``ks[c]``."""

    benchmark: ClassVar[str] = "pgi-pgu"
    names: tuple[str, ...]
    ks: tuple[float, ...]
    perturbation: str
    sigma: float
    draws: int
    segments: int
    pgi: np.ndarray
    pgu: np.ndarray
    seed: int

    @classmethod
    def merge(cls, parts: Sequence[PgiResult]) -> PgiResult:
        """One result of consecutive parts of a run (``first`` = 0, n, 2n, …: a job's steps), equal to one call
        over all the images (each image's noise is seeded by its index in the whole run)."""
        fields = ("model_id", "methods", "ks", "perturbation", "sigma", "draws", "segments", "seed")
        same_settings(parts, fields, "PGI/PGU")
        if len(parts) == 1:
            return parts[0]
        names = tuple(n for p in parts for n in p.names)
        pgi = np.concatenate([p.pgi for p in parts], axis=1)
        pgu = np.concatenate([p.pgu for p in parts], axis=1)
        return dataclasses.replace(parts[0], names=names, pgi=pgi, pgu=pgu)

    def rows(self) -> list[dict[str, Any]]:
        """Per method and k: PGI and PGU, mean and sd over the images (NaN images left out)."""
        return [
            {"method": name, "k": k, **summary(self.pgi[j, :, c], "pgi"), **summary(self.pgu[j, :, c], "pgu")}
            for j, name in enumerate(self.methods)
            for c, k in enumerate(self.ks)
        ]

    def made_with(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "images": list(self.names),
            "ks": list(self.ks),
            "perturbation": self.perturbation,
            "sigma": self.sigma,
            "draws": self.draws,
            "segments": self.segments,
            "seed": self.seed,
            "methods": self.method_params(),
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Every image's gaps: ``<model>.<method>.pgi`` and ``….pgu`` (images, len(ks)), and ``<model>.ks``."""
        return {
            f"{self.model_id}.ks": np.asarray(self.ks, np.float64),
            **self.per_method({"pgi": self.pgi, "pgu": self.pgu}),
        }


def _gaps(bundle, x, region: torch.Tensor, target: int, p0: float, perturbation, sigma, draws, generator) -> float:
    """Mean |f(x') − f(x)| with the pixels of ``region`` (1, 1, H, W) perturbed."""
    if perturbation == "baseline":
        batch = torch.where(region, substrate(bundle, x, "black"), x)
    else:
        lo, hi = bundle.input_range
        noise = torch.randn((draws, *x.shape[1:]), generator=generator).to(x.device, x.dtype) * sigma * (hi - lo)
        batch = x + noise * region
    with torch.no_grad():
        probs = [bundle.model(batch[i : i + 32]).float().softmax(-1)[:, target] for i in range(0, len(batch), 32)]
    return float((torch.cat(probs) - p0).abs().mean())


def pgi_pgu(
    bundle,
    images: Sequence[np.ndarray],
    methods: Sequence[str | tuple[str, dict]],
    *,
    names: Sequence[str] | None = None,
    ks: Sequence[float] = KS,
    perturbation: str = "gaussian",
    sigma: float = 0.1,
    draws: int = 50,
    segments: int = 50,
    seed: int = 0,
    first: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> PgiResult:
    """PGI and PGU of each method's map of the top-1 class on each image (module docstring).

    ``first``: the index in the whole run of ``images[0]`` (its noise is seeded by it), for a run in parts merged
    with :meth:`PgiResult.merge`."""
    from glimpse.saliency import explain
    from glimpse.saliency.methods.surrogate import superpixels_of

    if perturbation not in PERTURBATIONS:
        raise ValueError(f"perturbation: unknown {perturbation!r}; known: {', '.join(PERTURBATIONS)}")
    loop = Images(images, names, progress)
    if draws < 1 or segments < 2 or sigma <= 0:
        raise ValueError("draws: at least 1; segments: at least 2; sigma: positive")
    ks = tuple(float(k) for k in ks)
    pgi = np.zeros((len(methods), len(images), len(ks)))
    pgu = np.zeros_like(pgi)
    maps = []
    for i, image in loop:
        maps = explain(bundle, image, methods, seed=seed)
        target = int(maps[0].target.index)
        with bundle.lock:
            x = bundle.preprocess(image)
            labels = superpixels_of(bundle, x, segments)
            with torch.no_grad():
                p0 = float(bundle.model(x).float().softmax(-1)[0, target])
        lab = torch.from_numpy(labels).to(x.device)
        for j, m in enumerate(maps):
            for c, k in enumerate(ks):
                top = torch.from_numpy(top_segments(m.values, labels, k)).to(x.device)[lab][None, None]
                # the same noise for every method, k and side of an image: differences come from the maps
                for out, region in ((pgi, top), (pgu, ~top)):
                    generator = torch.Generator().manual_seed(seed * 100_003 + first + i)
                    with bundle.lock:  # the line per (method, k, side): a waiting click goes between two of them
                        out[j, i, c] = _gaps(bundle, x, region, target, p0, perturbation, sigma, draws, generator)
    params = tuple(dict(m.params) for m in maps)
    keys = method_keys(methods)
    return PgiResult(
        bundle.model_id, keys, params, loop.names, ks, perturbation, float(sigma), int(draws), segments, pgi, pgu, seed
    )
