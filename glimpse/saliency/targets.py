"""What is explained: the model's top-1 class, a :class:`~glimpse.saliency.base.Target` from class names, and
the target in words."""

from __future__ import annotations

import numpy as np
import torch

from glimpse.saliency.base import Target


def top1(bundle, image: np.ndarray | torch.Tensor) -> int:
    """The class with the largest logit for one image: the class explained when no target is given.

    Parameters
    ----------
    bundle : ClassifierBundle
        The classifier; its lock is held for the forward pass.
    image : np.ndarray or torch.Tensor
        uint8 RGB (H, W, 3), preprocessed by ``bundle.preprocess``; or a model input (1, 3, H, W) already.

    Returns
    -------
    int
        ``argmax_c S_c(x)`` (the first such class on a tie), which is also the most probable class.
    """
    with bundle.lock, torch.no_grad():
        x = image if isinstance(image, torch.Tensor) else bundle.preprocess(image)
        if x.ndim != 4 or x.shape[0] != 1:
            raise ValueError(f"image: expected one image, got a model input of shape {tuple(x.shape)}")
        logits = bundle.model(x)
    logits = logits if isinstance(logits, torch.Tensor) else logits.logits  # Hugging Face ModelOutput
    return int(logits[0].argmax())


def make_target(bundle, query: str | int | None = None, contrast: str | int | None = None, *, image=None) -> Target:
    """A :class:`Target` from class names or indices (name search via ``bundle.label_index``).

    ``query`` None means the top-1 class of ``image`` (:func:`top1`; ``image`` is then required).
    """
    if query is None or (isinstance(query, str) and not query.strip()):
        if image is None:
            raise ValueError("target: give a class (name or index) or an image to take the top-1 class from")
        index = top1(bundle, image)
    else:
        index = bundle.label_index(query)
    other = None
    if contrast is not None and not (isinstance(contrast, str) and not contrast.strip()):
        other = bundle.label_index(contrast)
    return Target(int(index), None if other is None else int(other))


def target_label(bundle, target: Target) -> str:
    """The explained score in words: the class name, or "a − b" for a contrast."""
    name = bundle.labels[target.index]
    if target.contrast is None:
        return name
    return f"{name} − {bundle.labels[target.contrast]}"
