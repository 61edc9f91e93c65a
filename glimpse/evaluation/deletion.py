"""Deletion and insertion curves (Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for
Explanation of Black-box Models", BMVC 2018).

Rank the model-input pixels by the map, most important first. *Deletion* replaces the top-ranked
fraction ``f`` of pixels by a fill (black, blurred or mean image) and records the target's softmax
probability ``p(f)``; a faithful map makes it fall fast, so its area under the curve
``AUC = ∫₀¹ p(f) df`` is small. *Insertion* starts from a blurred copy and reveals the top-ranked
pixels; a faithful map makes the probability rise fast (large AUC).

All perturbed inputs of one curve are built up front and scored in batches of ``batch_size``: one
batched forward per curve, not one forward per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from glimpse.resample import resample
from glimpse.saliency.contract import gaussian_blur

FILLS = ("black", "blur", "mean")
RANKS = ("value", "abs")
#: Perturbed inputs per forward when not given: CPU throughput of the embedded model is flat or falls
#: beyond a few images per batch (cache pressure), accelerators want large batches.
DEFAULT_BATCH = {"cpu": 8, "cuda": 64, "mps": 32}
#: Gaussian blur of the insertion/deletion substrate, in model-input pixels (RISE's code: kernel 11, σ 5).
BLUR_SIGMA = 5.0


@dataclass(frozen=True)
class CurveResult:
    """Deletion and insertion curves of one map.

    ``fractions`` (steps + 1,) are the shares of pixels deleted / inserted; the scores are the target's
    softmax probabilities at those fractions; the AUCs use the trapezoidal rule over [0, 1].
    """

    fractions: np.ndarray
    deletion_scores: np.ndarray
    insertion_scores: np.ndarray
    deletion_auc: float
    insertion_auc: float
    target: int
    params: tuple  # sorted (name, value) pairs


def substrate(bundle, x: torch.Tensor, kind: str) -> torch.Tensor:
    """The image that replaces removed pixels, in model-input space: ``black`` (pixel 0), ``blur``
    (Gaussian σ = 5 px) or ``mean`` (the image's per-channel mean)."""
    if kind == "black":
        mean = torch.tensor(bundle.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(bundle.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return ((0.0 - mean) / std).expand_as(x).clone()
    if kind == "blur":
        return gaussian_blur(x, BLUR_SIGMA)
    if kind == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
    raise ValueError(f"fill: unknown {kind!r}; known: {', '.join(FILLS)}")


def pixel_order(values: np.ndarray, size: tuple[int, int], rank: str = "value") -> np.ndarray:
    """Flat pixel indices at model-input resolution, most important first (stable for ties)."""
    if rank not in RANKS:
        raise ValueError(f"rank: unknown {rank!r}; known: {', '.join(RANKS)}")
    v = resample(values, size, np.float32).ravel()
    if rank == "abs":
        v = np.abs(v)
    if not np.all(np.isfinite(v)):
        raise ValueError("values: the map contains NaN or infinite values")
    return np.argsort(-v, kind="stable")


def _masks(order: np.ndarray, counts: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(steps + 1, 1, H, W) masks: True where a pixel is among the first ``count`` of ``order``."""
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    m = rank[None, :] < counts[:, None]
    return torch.from_numpy(m.reshape(len(counts), 1, *size))


@torch.no_grad()
def _probabilities(bundle, batch: torch.Tensor, target: int, batch_size: int) -> np.ndarray:
    out = []
    with bundle.lock:
        for start in range(0, batch.shape[0], batch_size):
            logits = bundle.model(batch[start : start + batch_size])
            out.append(logits.float().softmax(-1)[:, target].cpu())
    return torch.cat(out).numpy().astype(np.float64)


def deletion_insertion(
    bundle,
    image: np.ndarray,
    values: np.ndarray,
    *,
    target: int,
    steps: int = 20,
    deletion_fill: str = "black",
    insertion_start: str = "blur",
    rank: str = "value",
    batch_size: int | None = None,
) -> CurveResult:
    """Deletion and insertion curves of a saliency map (Petsiuk et al. 2018).

    Parameters
    ----------
    bundle : ClassifierBundle
        The classifier the map explains.
    image : ndarray, uint8 (H, W, 3)
        The explained image.
    values : ndarray, float (h, w)
        Raw map, any resolution; resized bilinearly to the model input before ranking.
    target : int
        Class whose softmax probability is tracked.
    steps : int
        Number of deletion/insertion steps; the curves have ``steps + 1`` points from 0 to 1.
    deletion_fill : {"black", "blur", "mean"}
        What replaces deleted pixels.
    insertion_start : {"black", "blur", "mean"}
        The image insertion starts from (RISE: a blurred copy).
    rank : {"value", "abs"}
        Rank by the signed value (positive evidence first) or by magnitude.
    batch_size : int or None
        Perturbed inputs per forward pass; None picks a device default (8 on CPU, 64 on CUDA).

    Returns
    -------
    CurveResult
        ``deletion_auc = ∫ p_del(f) df`` (lower is better), ``insertion_auc = ∫ p_ins(f) df`` (higher is better).
    """
    if steps < 1:
        raise ValueError(f"steps: must be at least 1, got {steps}")
    if batch_size is None:
        batch_size = DEFAULT_BATCH.get(bundle.device.type, 32)
    if batch_size < 1:
        raise ValueError(f"batch_size: must be at least 1, got {batch_size}")
    if not 0 <= int(target) < bundle.num_classes:
        raise ValueError(f"target: class index {target} outside 0..{bundle.num_classes - 1}")
    for name, kind in (("deletion_fill", deletion_fill), ("insertion_start", insertion_start)):
        if kind not in FILLS:
            raise ValueError(f"{name}: unknown {kind!r}; known: {', '.join(FILLS)}")
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values: expected a 2-D map (h, w), got shape {values.shape}")

    size = tuple(bundle.input_size)
    order = pixel_order(values, size, rank)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * order.size).astype(np.int64)
    x = bundle.preprocess(image)
    masks = _masks(order, counts, size).to(x.device)

    deleted = torch.where(masks, substrate(bundle, x, deletion_fill), x)
    inserted = torch.where(masks, x, substrate(bundle, x, insertion_start))
    p_del = _probabilities(bundle, deleted, int(target), batch_size)
    p_ins = _probabilities(bundle, inserted, int(target), batch_size)
    params = tuple(
        sorted(
            {
                "steps": steps,
                "deletion_fill": deletion_fill,
                "insertion_start": insertion_start,
                "rank": rank,
                "blur_sigma": BLUR_SIGMA,
            }.items()
        )
    )
    return CurveResult(
        fractions=fractions,
        deletion_scores=p_del,
        insertion_scores=p_ins,
        deletion_auc=float(np.trapezoid(p_del, fractions)),
        insertion_auc=float(np.trapezoid(p_ins, fractions)),
        target=int(target),
        params=params,
    )
