"""The per-image rows of the faithfulness-against-complexity study (``glimpse study``), as a batch task: the same
rows in this process and on Ray.

Per image: its visual complexity (MSG, MUC1..MUC8, edge density: :mod:`glimpse.complexity`); each method's map
of the target class (the class given for the image, else the top-1) and the model's probability of it; each map's deletion and insertion AUC (as
:class:`glimpse.batch.tasks.EvaluateTask` scores them); the agreement between every two methods (Spearman's ρ
over the maps' pixels, :func:`glimpse.map_metrics.spearman`) and each method's mean agreement with the others;
and, where the image has a mask (a file of the same name under ``masks``), each map's pointing game and
relevance mass against it (:mod:`glimpse.evaluation.localisation`, the maps at the image's size, as
``glimpse evaluate masks`` scores them). The masks may also be given in memory, by image key (the Evaluate page's
"Complexity study" tab calls the task on batches of the built-in sets that way).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from glimpse.batch.tasks import EvaluateTask

if TYPE_CHECKING:
    from glimpse.evaluation.clutter import ClutterScene

COMPLEXITY = ("MSG", *(f"MUC{b}" for b in range(1, 9)), "edge_density")
MASK_METRICS = ("pointing_game", "relevance_mass")


def agreement_column(a: str, b: str) -> str:
    return f"{a}__{b}_spearman"


class StudyTask(EvaluateTask):
    """``masks``: a folder of masks named like the images (white inside), the masks themselves by image key
    (boolean, the image's size), or None; ``targets``: image key -> class index to explain (the built-in clutter
    set names each scene's largest object), else the top-1."""

    name = "study"

    def __init__(
        self, *, masks: str | Mapping[str, np.ndarray] | None = None, targets: dict[str, int] | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.masks = masks if masks is None or isinstance(masks, Mapping) else str(masks)
        self.targets = dict(targets or {})

    def constructor_kwargs(self) -> dict:
        return {**super().constructor_kwargs(), "masks": self.masks, "targets": self.targets}

    def columns(self) -> list[tuple[str, pa.DataType]]:
        cols = [(c, pa.float64()) for c in COMPLEXITY] + [("target", pa.int64()), ("target_label", pa.string())]
        cols.append(("target_probability", pa.float64()))
        cols.append(("has_mask", pa.bool_()))
        for m in self.methods:
            cols += [(f"{m}_{c}", pa.float64()) for c in ("deletion_auc", "insertion_auc", "agreement")]
            cols += [(f"{m}_{c}", pa.float64()) for c in MASK_METRICS]
        cols += [(agreement_column(a, b), pa.float64()) for a, b in itertools.combinations(self.methods, 2)]
        return cols

    def _mask(self, key: str, shape: tuple[int, int]) -> np.ndarray | None:
        if self.masks is None:
            return None
        if isinstance(self.masks, Mapping):
            mask = self.masks.get(key)
            if mask is not None and np.shape(mask) != tuple(shape):
                raise ValueError(f"masks: {key}'s mask is {np.shape(mask)}, its image {tuple(shape)}")
            return None if mask is None else np.asarray(mask, bool)
        path = Path(self.masks) / key
        if not path.is_file():
            return None
        from glimpse.evaluation.masks import load_mask

        return load_mask(path, shape)

    def values(self, keys: Sequence[str], images: Sequence[np.ndarray]) -> list[dict]:
        from glimpse.complexity import complexity_batch
        from glimpse.evaluation.deletion import deletion_curves
        from glimpse.evaluation.localisation import pointing_game, relevance_mass
        from glimpse.map_metrics import spearman
        from glimpse.saliency import explain

        features = complexity_batch(list(images), edges=True, device=self.device, names=list(keys))
        panels = [
            explain(self.bundle, image, list(self.methods), target=self.targets.get(key), seed=self.seed)
            for key, image in zip(keys, images)
        ]
        pairs = [(image, m) for image, maps in zip(images, panels) for m in maps]
        fractions = np.linspace(0.0, 1.0, self.steps + 1)

        def curves(fill: str, insertion: bool) -> np.ndarray:
            return deletion_curves(
                self.bundle,
                [image for image, _ in pairs],
                [m.values for _, m in pairs],
                targets=[m.target.index for _, m in pairs],
                steps=self.steps,
                fill=fill,
                insertion=insertion,
            )

        deleted, inserted = curves("black", False), curves("blur", True)
        deletion = [float(np.trapezoid(row, fractions)) for row in deleted]
        insertion = [float(np.trapezoid(row, fractions)) for row in inserted]
        out, k = [], 0
        for key, image, feats, maps in zip(keys, images, features, panels):
            record = feats.record()
            row = {c: float(record[c]) for c in COMPLEXITY}
            row.update(target=maps[0].target.index, target_label=maps[0].target_label)
            row["target_probability"] = float(deleted[k][0])  # nothing deleted yet: the image as it is
            mask = self._mask(key, image.shape[:2])
            row["has_mask"] = mask is not None
            rho = {}
            for a, b in itertools.combinations(range(len(maps)), 2):
                rho[a, b] = rho[b, a] = spearman(maps[a].values, maps[b].values)
                row[agreement_column(maps[a].method, maps[b].method)] = rho[a, b]
            for j, m in enumerate(maps):
                row[f"{m.method}_deletion_auc"], row[f"{m.method}_insertion_auc"] = deletion[k], insertion[k]
                k += 1
                others = [rho[j, i] for i in range(len(maps)) if i != j]
                row[f"{m.method}_agreement"] = (
                    float(np.nanmean(others)) if others and np.isfinite(others).any() else None
                )
                if mask is not None:
                    values = m.at_size(*image.shape[:2])
                    row[f"{m.method}_pointing_game"] = float(pointing_game(values, mask))
                    row[f"{m.method}_relevance_mass"] = float(relevance_mass(values, mask))
            out.append(row)
        return out


#: built-in inputs of ``glimpse study``: name -> what it is
BUILT_IN = {
    "shapes-clutter": "shapes scenes of clutter 1–6 with exact masks of their largest object (shapes classifier)",
    "photos": "the photographs shipped with Glimpse and 12 crops of each (no masks)",
}


def clutter_scenes(*, per_level: int = 20, seed: int = 0) -> dict[str, ClutterScene]:
    """The clutter set (:func:`glimpse.evaluation.clutter.clutter_set`) by the file names :func:`write_clutter`
    gives them, ``L<level>-<n>.png``, level by level."""
    from glimpse.evaluation.clutter import clutter_set

    scenes: dict[str, ClutterScene] = {}
    counts: dict[int, int] = {}
    for scene in clutter_set(per_level, seed):
        n = counts[scene.level] = counts.get(scene.level, 0) + 1
        scenes[f"L{scene.level}-{n:03d}.png"] = scene
    return scenes


def write_clutter(folder: str | Path, *, per_level: int = 20, seed: int = 0) -> tuple[Path, Path, dict[str, int]]:
    """The clutter set (:func:`clutter_scenes`) as PNGs under ``folder/images`` (named ``L<level>-<n>.png``) and
    the target object's mask of each under ``folder/masks``; returns (images, masks, targets by file name)."""
    from PIL import Image

    images, masks = Path(folder) / "images", Path(folder) / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    targets = {}
    for name, scene in clutter_scenes(per_level=per_level, seed=seed).items():
        Image.fromarray(scene.image).save(images / name)
        Image.fromarray((scene.mask * 255).astype(np.uint8)).save(masks / name)
        targets[name] = int(scene.target)
    return images, masks, targets


def photo_set(*, crops_per_image: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """The shipped sample photographs and ``crops_per_image`` square crops of each (sides 45–100 % of the short
    side, half of them mirrored: :func:`glimpse.images.sample_crops`, the model lab's pool) by the file names
    :func:`write_photos` gives them: ``chelsea.png``, ``chelsea-crop01.png``, …"""
    from glimpse.images import sample_crops, sample_images

    pictures = iter(sample_crops(per_image=crops_per_image, seed=seed))
    return {
        f"{name}.png" if n == 0 else f"{name}-crop{n:02d}.png": next(pictures)
        for name in sample_images()
        for n in range(crops_per_image + 1)
    }


def write_photos(folder: str | Path, *, crops_per_image: int = 12, seed: int = 0) -> Path:
    """:func:`photo_set` as PNGs under ``folder``."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, pixels in photo_set(crops_per_image=crops_per_image, seed=seed).items():
        Image.fromarray(pixels).save(folder / name)
    return folder
