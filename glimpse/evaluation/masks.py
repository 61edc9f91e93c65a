"""Ground-truth masks from the user: does each method's map land on the region a person marked?

The domain-validation step the X-ray and neuroimaging saliency papers ask for: per (image, mask) pair and
method, the pointing game, relevance mass, relevance rank and top-k % IoU of
:mod:`glimpse.evaluation.localisation`, with each map scored at the image's own size (as
``python -m glimpse saliency`` writes it: :meth:`~glimpse.saliency.SaliencyMap.at_size`).

A mask is an image of the same size as its image, white inside and black outside (grey levels other than
black and white are refused: a soft or anti-aliased mask has no single answer).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from glimpse.evaluation.localisation import pointing_game, relevance_mass, relevance_rank, topk_iou
from glimpse.evaluation.result import Images, PanelResult, method_keys, summary
from glimpse.evaluation.stats import same_settings

#: the metrics, named as the command line and the JSON name them
METRICS = ("pointing_game", "relevance_mass", "relevance_rank", "topk_iou")


def load_mask(source: bytes | str | os.PathLike, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A binary mask from an image file or bytes: bool (H, W), True where the image is white.

    Raises
    ------
    ValueError
        Not binary (grey levels besides black and white), empty, the whole image, or (``shape``) another size.
    glimpse.images.ImageLoadError
        Not a readable image.
    """
    from glimpse.images import load_image

    grey = load_image(source).mean(axis=2)
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "mask"
    levels = np.unique(grey)
    if not set(levels.tolist()) <= {0.0, 255.0}:
        raise ValueError(
            f"mask: {name} is not binary ({len(levels)} grey levels); use white (255) inside and black (0) outside"
        )
    mask = grey == 255.0
    if shape is not None and mask.shape != tuple(shape):
        raise ValueError(
            f"mask: {name} is {mask.shape[1]}×{mask.shape[0]}, its image is {shape[1]}×{shape[0]}; "
            "draw the mask at the image's size"
        )
    if not mask.any():
        raise ValueError(f"mask: {name} is all black (nothing inside)")
    if mask.all():
        raise ValueError(f"mask: {name} is all white (the whole image: every map would score perfectly)")
    return mask


@dataclass(frozen=True)
class MaskResult(PanelResult):
    """``scores[metric][j, i]``: method j on pair i; ``targets[i]``: the class explained."""

    benchmark: ClassVar[str] = "masks"
    names: tuple[str, ...]
    targets: tuple[int, ...]
    k: float
    scores: dict[str, np.ndarray]
    seed: int

    @classmethod
    def merge(cls, parts: Sequence[MaskResult]) -> MaskResult:
        """One result of parts of a run over pairs (a job's steps), equal to one call over all the pairs."""
        same_settings(parts, ("model_id", "methods", "k", "seed"), "masks")
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        names = tuple(n for p in parts for n in p.names)
        targets = tuple(t for p in parts for t in p.targets)
        scores = {m: np.concatenate([p.scores[m] for p in parts], axis=1) for m in first.scores}
        return cls(first.model_id, first.methods, first.params, names, targets, first.k, scores, first.seed)

    def rows(self) -> list[dict[str, Any]]:
        """Per method: each metric's mean and standard deviation over the pairs (NaN pairs left out)."""
        out = []
        for j, name in enumerate(self.methods):
            row: dict[str, Any] = {"method": name}
            for metric in METRICS:
                row.update(summary(self.scores[metric][j], metric))
            out.append(row)
        return out

    def made_with(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "pairs": list(self.names),
            "targets": list(self.targets),
            "topk_iou_k": self.k,
            "seed": self.seed,
            "methods": self.method_params(),
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Every pair's scores: ``<model>.<method>.<metric>`` (pairs,)."""
        return self.per_method(self.scores)


def mask_scores(
    bundle,
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    methods: Sequence[str | tuple[str, dict]],
    *,
    names: Sequence[str] | None = None,
    targets: Sequence[int] | None = None,
    k: float = 10.0,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> MaskResult:
    """Score every method's map against each image's mask (pairs in order): the map of ``targets[i]`` when
    given (e.g. the class of the object the mask covers), else of the top-1 class."""
    from glimpse.saliency import explain

    loop = Images(images, names, progress, what="pair", empty="images: give at least one image and its mask")
    if len(images) != len(masks):
        raise ValueError(f"masks: {len(masks)} masks for {len(images)} images; give one mask per image, in order")
    if targets is not None and len(targets) != len(images):
        raise ValueError(f"targets: {len(targets)} targets for {len(images)} images")
    for name, image, mask in zip(loop.names, images, masks):
        if np.shape(mask) != image.shape[:2]:
            raise ValueError(f"mask: the mask of {name} is {np.shape(mask)}, its image {image.shape[:2]}")
    scores = {m: np.full((len(methods), len(images)), np.nan) for m in METRICS}
    explained, maps = [], []
    for i, image in loop:
        mask = masks[i]
        target = None if targets is None else int(targets[i])
        maps = explain(bundle, image, methods, target=target, seed=seed)
        explained.append(int(maps[0].target.index))
        for j, m in enumerate(maps):
            values = m.at_size(*image.shape[:2])
            scores["pointing_game"][j, i] = float(pointing_game(values, mask))
            scores["relevance_mass"][j, i] = relevance_mass(values, mask)
            scores["relevance_rank"][j, i] = relevance_rank(values, mask)
            scores["topk_iou"][j, i] = topk_iou(values, mask, k)
    params = tuple(dict(m.params) for m in maps)
    return MaskResult(
        bundle.model_id, method_keys(methods), params, loop.names, tuple(explained), float(k), scores, seed
    )
