"""Deletion and insertion curves (Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for
Explanation of Black-box Models", BMVC 2018).

Rank the model-input pixels by the map, most important first. *Deletion* replaces the top-ranked
fraction ``f`` of pixels by a fill (black, blurred or mean image) and records the target's softmax
probability ``p(f)`` (its sigmoid for a multi-label model, whose classes are scored independently); a
faithful map makes it fall fast, so its area under the curve ``AUC = ∫₀¹ p(f) df`` is small. *Insertion*
starts from a blurred copy and reveals the top-ranked pixels; a faithful map makes the probability rise fast (large AUC).

The perturbed inputs are scored in batches of ``batch_size``: one batched forward per curve, not one
forward per step. :func:`deletion_curves` scores the curves of many images together, its batches running
across images (Quantus' ``PixelFlipping`` batches across images within a step; here any (image, step) pair
may share a forward), and builds each batch only when it is scored, so memory stays at one batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from glimpse.resample import resample
from glimpse.saliency.contract import gaussian_blur

FILLS = ("black", "blur", "mean")
RANKS = ("value", "abs")
#: Perturbed inputs per forward when not given, for a model input of up to ``DEFAULT_BATCH_PIXELS``. On a
#: 2-core CPU the embedded EfficientNet-Lite0's forward takes the least time per image at about 4 images
#: (8 were 20–30 % slower per image: activations outgrow the cache); accelerators want large batches. A
#: smaller input gets as many input pixels per forward (a 64×32 BlockDigits input: 96 on CPU, about as fast
#: per image as 32–96 and faster than 128+; a forward of 4 such images is mostly per-call overhead).
DEFAULT_BATCH = {"cpu": 4, "cuda": 64, "mps": 32}
DEFAULT_BATCH_PIXELS = 224 * 224
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


def _ranks(order: np.ndarray) -> torch.Tensor:
    """(H·W,) int64: each pixel's position in ``order`` (0 = most important)."""
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return torch.from_numpy(rank)


@torch.no_grad()
def _scores(
    bundle,
    x: torch.Tensor,
    fill: torch.Tensor,
    ranks: torch.Tensor,
    counts: torch.Tensor,
    targets: torch.Tensor,
    *,
    delete: bool,
    batch_size: int,
    lock_per_batch: bool,
) -> np.ndarray:
    """(N, K) target probabilities of image i (``x[i]``, its ``fill[i]``, pixel ``ranks[i]``, class ``targets[i]``)
    with its first ``counts[k]`` pixels deleted (set to the fill) or inserted (into the fill).

    The (image, step) pairs run image-major in batches of ``batch_size``; a batch's inputs are built just before
    its forward. ``lock_per_batch``: take the model's line for each forward (a long multi-image run lets other
    sessions in between batches) rather than once for all of them (one curve)."""
    n, k = ranks.shape[0], counts.shape[0]
    size = x.shape[-2:]
    out = torch.empty(n * k, dtype=torch.float32)
    multilabel = bool(getattr(bundle, "multilabel", False))
    whole = contextlib.nullcontext() if lock_per_batch else bundle.lock
    each = bundle.lock if lock_per_batch else contextlib.nullcontext()
    with whole:
        for start in range(0, n * k, batch_size):
            pair = torch.arange(start, min(start + batch_size, n * k))
            i, step = pair // k, pair % k
            # (B, 1, H, W): True where a pixel is among the first counts[step] of image i's order
            masks = (ranks[i] < counts[step, None]).view(-1, 1, *size).to(x.device)
            inside, outside = (fill[i], x[i]) if delete else (x[i], fill[i])
            with each:
                logits = bundle.model(torch.where(masks, inside, outside))
            # a multi-label model scores each class by its own sigmoid (its probability), not one softmax
            probs = logits.float().sigmoid() if multilabel else logits.float().softmax(-1)
            out[start : start + len(pair)] = probs[torch.arange(len(pair)), targets[i]].cpu()
    return out.view(n, k).numpy().astype(np.float64)


def _batch_size(bundle, batch_size: int | None) -> int:
    if batch_size is None:
        h, w = bundle.input_size
        batch_size = DEFAULT_BATCH.get(bundle.device.type, 32) * max(1, DEFAULT_BATCH_PIXELS // (h * w))
    if batch_size < 1:
        raise ValueError(f"batch_size: must be at least 1, got {batch_size}")
    return batch_size


def _counts(steps: int, pixels: int) -> tuple[np.ndarray, np.ndarray]:
    if steps < 1:
        raise ValueError(f"steps: must be at least 1, got {steps}")
    fractions = np.linspace(0.0, 1.0, steps + 1)
    return fractions, np.round(fractions * pixels).astype(np.int64)


def _check_map(values) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values: expected a 2-D map (h, w), got shape {values.shape}")
    return values


def _check_target(bundle, target) -> int:
    if not 0 <= int(target) < bundle.num_classes:
        raise ValueError(f"target: class index {target} outside 0..{bundle.num_classes - 1}")
    return int(target)


def deletion_curves(
    bundle,
    images: Sequence[np.ndarray],
    maps: Sequence[np.ndarray],
    *,
    targets: Sequence[int],
    steps: int = 20,
    fill: str = "black",
    insertion: bool = False,
    rank: str = "value",
    batch_size: int | None = None,
) -> np.ndarray:
    """Deletion (or insertion) curves of many maps, their perturbed inputs batched across images.

    The same curve as :func:`deletion_insertion` (Petsiuk et al. 2018): ``p_i(f)``, the softmax probability
    of ``targets[i]`` once the top-ranked fraction ``f`` of image i's pixels (ranked by ``maps[i]``) is replaced by
    the fill (deletion), or once it is revealed on the fill (insertion), at ``f = 0, 1/steps, …, 1``.

    Parameters
    ----------
    bundle : ClassifierBundle
        The classifier the maps explain.
    images : sequence of ndarray, uint8 (H, W, 3)
        The explained images.
    maps : sequence of ndarray, float (h, w)
        One raw map per image, any resolution; resized bilinearly to the model input before ranking.
    targets : sequence of int
        Class whose softmax probability is tracked, one per image.
    steps : int
        Number of steps; each curve has ``steps + 1`` points from 0 to 1.
    fill : {"black", "blur", "mean"}
        What replaces deleted pixels, or the image that insertion starts from.
    insertion : bool
        Insertion curves instead of deletion curves.
    rank : {"value", "abs"}
        Rank by the signed value (positive evidence first) or by magnitude.
    batch_size : int or None
        Perturbed inputs per forward pass, from any images; None picks a device default (4 on CPU, 64 on CUDA,
        for inputs up to 224 × 224; more for smaller inputs, see ``DEFAULT_BATCH``).

    Returns
    -------
    ndarray, float64 (len(images), steps + 1)
        ``p_i`` at the fractions ``np.linspace(0, 1, steps + 1)``.

    Notes
    -----
    With a constant fill (``"black"``; any fill the model input takes as one value) and a tie-free map this is
    Quantus' ``PixelFlipping`` (Bach et al. 2015) with ``perturb_baseline`` that value and ``features_in_step``
    = 3·H·W / steps channel values of whole pixels, less its first point (``bench/evaluate.py`` checks it).
    """
    batch_size = _batch_size(bundle, batch_size)
    if fill not in FILLS:
        raise ValueError(f"fill: unknown {fill!r}; known: {', '.join(FILLS)}")
    if not len(images) == len(maps) == len(targets):
        raise ValueError(
            f"maps, targets: one per image; got {len(images)} images, {len(maps)} maps, {len(targets)} targets"
        )
    if not len(images):
        raise ValueError("images: give at least one image")
    size = tuple(bundle.input_size)
    fractions, counts = _counts(steps, size[0] * size[1])
    targets = torch.tensor([_check_target(bundle, t) for t in targets])
    ranks = torch.stack([_ranks(pixel_order(_check_map(v), size, rank)) for v in maps])
    x = bundle.preprocess_batch(list(images))
    fills = substrate(bundle, x, fill)
    # The black fill is the same image for every image, and so is the input that is all fill (deletion's
    # last point, insertion's first): scored once for all of them.
    shared = (0 if insertion else steps) if fill == "black" and len(images) > 1 else None
    keep = [k for k in range(steps + 1) if k != shared]
    scores = np.empty((len(images), steps + 1))
    scores[:, keep] = _scores(
        bundle,
        x,
        fills,
        ranks,
        torch.from_numpy(counts[keep]),
        targets,
        delete=not insertion,
        batch_size=batch_size,
        lock_per_batch=True,
    )
    if shared is not None:
        with bundle.lock, torch.no_grad():
            logits = bundle.model(fills[:1]).float()
            p = (logits.sigmoid() if getattr(bundle, "multilabel", False) else logits.softmax(-1))[0].cpu()
        scores[:, shared] = p[targets].numpy()
    return scores


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
        Perturbed inputs per forward pass; None picks a device default (4 on CPU, 64 on CUDA, for inputs up
        to 224 × 224; more for smaller inputs, see ``DEFAULT_BATCH``).

    Returns
    -------
    CurveResult
        ``deletion_auc = ∫ p_del(f) df`` (lower is better), ``insertion_auc = ∫ p_ins(f) df`` (higher is better).
    """
    size = tuple(bundle.input_size)
    fractions, counts = _counts(steps, size[0] * size[1])
    batch_size = _batch_size(bundle, batch_size)
    target = _check_target(bundle, target)
    for name, kind in (("deletion_fill", deletion_fill), ("insertion_start", insertion_start)):
        if kind not in FILLS:
            raise ValueError(f"{name}: unknown {kind!r}; known: {', '.join(FILLS)}")
    ranks = _ranks(pixel_order(_check_map(values), size, rank))[None]
    x = bundle.preprocess(image)
    counts_t, targets = torch.from_numpy(counts), torch.tensor([target])
    p_del, p_ins = (
        _scores(
            bundle,
            x,
            substrate(bundle, x, kind),
            ranks,
            counts_t,
            targets,
            delete=delete,
            batch_size=batch_size,
            lock_per_batch=False,
        )[0]
        for kind, delete in ((deletion_fill, True), (insertion_start, False))
    )
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
