"""What a batch run computes per image, as rows of a fixed schema (the same with and without Ray).

Every row has ``path`` (the image's key inside the input), ``width``, ``height`` and ``error`` (null, or why
the image gave no values: a corrupt file is a row with its error, not a failed job), then the task's columns.
A task is a callable class: built once per worker (a Ray actor holds its model), called on a batch of decoded
images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from glimpse.batch.inputs import Item

BASE = [("path", pa.string()), ("width", pa.int32()), ("height", pa.int32()), ("error", pa.string())]


def decode(item: Item) -> tuple[np.ndarray | None, str | None]:
    """The image's pixels, or None and a one-line reason."""
    from glimpse.images import load_image

    try:
        return load_image(item.read(), name=item.key), None
    except (ValueError, OSError, KeyError) as err:  # ImageLoadError is a ValueError; a vanished file an OSError
        return None, str(err).splitlines()[0] if str(err) else type(err).__name__


def use_threads(threads: int | None) -> None:
    """Torch's CPU threads in this worker. Maps are equal across workers and in-process runs to float rounding;
    bit for bit only with the same thread count (the order of a sum depends on it)."""
    if threads is not None:
        import torch

        torch.set_num_threads(int(threads))


class Task:
    """Base: ``columns`` (name, arrow type) after the base ones; ``values(images)`` per image."""

    name = "task"
    #: True when the task loads nothing (no model): on Ray it then runs as plain tasks, not an actor pool.
    stateless = False

    def columns(self) -> list[tuple[str, pa.DataType]]:
        raise NotImplementedError

    def constructor_kwargs(self) -> dict:
        """What a Ray actor passes to the constructor to build the same task."""
        raise NotImplementedError

    def values(self, keys: Sequence[str], images: Sequence[np.ndarray]) -> list[dict]:
        raise NotImplementedError

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(BASE + self.columns())

    def table(self, keys: Sequence[str], images: Sequence[np.ndarray | None], errors: Sequence[str | None]) -> pa.Table:
        """One batch as an arrow table of :attr:`schema`; an image whose computation raises gets an error row."""
        rows: list[dict] = []
        good = [k for k, img in enumerate(images) if img is not None]
        computed: dict[int, dict] = {}
        if good:
            try:
                for k, vals in zip(good, self.values([keys[k] for k in good], [images[k] for k in good])):
                    computed[k] = vals
            except (ValueError, RuntimeError):  # one bad image must not lose the batch: retry one by one
                for k in good:
                    try:
                        computed[k] = self.values([keys[k]], [images[k]])[0]
                    except (ValueError, RuntimeError) as err:
                        computed[k] = {"__error__": str(err).splitlines()[0]}
        for k, (key, image, error) in enumerate(zip(keys, images, errors)):
            vals = computed.get(k, {})
            error = vals.pop("__error__", error)
            h, w = (None, None) if image is None else image.shape[:2]
            rows.append({"path": key, "width": w, "height": h, "error": error, **({} if error else vals)})
        return pa.Table.from_pylist(rows, schema=self.schema)

    def __call__(self, batch: dict) -> pa.Table:
        """Ray's ``map_batches`` entry: ``batch`` has ``path``, ``pixels`` (or None) and ``error`` columns."""
        keys = [str(k) for k in batch["path"]]
        pixels = [None if p is None or (isinstance(p, float) and np.isnan(p)) else np.asarray(p, np.uint8)
                  for p in batch["pixels"]]  # fmt: skip
        errors = [str(e) if e else None for e in batch["error"]]
        return self.table(keys, [p if p is not None and p.ndim == 3 else None for p in pixels], errors)


class ComplexityTask(Task):
    """MSG, MUC1..MUC8 (Sarıtaş et al. 2025, :mod:`glimpse.complexity`) and, optionally, the edge density."""

    name = "complexity"
    stateless = True

    def __init__(self, *, edges: bool = True, device: str = "cpu", threads: int | None = None) -> None:
        self.edges, self.device, self.threads = edges, device, threads
        use_threads(threads)

    def constructor_kwargs(self) -> dict:
        return {"edges": self.edges, "device": self.device, "threads": self.threads}

    def columns(self) -> list[tuple[str, pa.DataType]]:
        cols = [("MSG", pa.float64())] + [(f"MUC{b}", pa.float64()) for b in range(1, 9)]
        return cols + ([("edge_density", pa.float64())] if self.edges else [])

    def values(self, keys, images) -> list[dict]:
        from glimpse.complexity import complexity_batch

        # keys name the images in an error ("a/b.png: needs at least 8x8 pixels…"), not their index in the batch
        feats = complexity_batch(list(images), edges=self.edges, device=self.device, names=list(keys))
        return [f.record() for f in feats]


STATS = ("mean", "abs_mean", "min", "max", "top5_mass")


def _stats(values: np.ndarray) -> dict[str, float]:
    a = np.abs(values.astype(np.float64))
    k = max(1, int(round(0.05 * a.size)))
    top = np.sort(a.ravel())[-k:].sum() / max(a.sum(), 1e-300)
    return {"mean": float(values.mean()), "abs_mean": float(a.mean()), "min": float(values.min()),
            "max": float(values.max()), "top5_mass": float(top)}  # fmt: skip


class SaliencyTask(Task):
    """Saliency maps of each image for ``methods`` on the classifier ``model_id`` (loaded once per worker by
    ``loader(model_id, device=...)``). Per method: the map's mean, mean |value|, min, max and the share of
    |value| in the top 5 % of pixels; the raw maps go to one saliency NPZ per image under ``out/maps/``, named
    in the ``maps_npz`` column (relative to ``out``)."""

    name = "saliency"

    def __init__(
        self,
        *,
        model_id: str,
        methods: Sequence[str],
        out: str,
        loader: Callable,
        device: str = "cpu",
        seed: int = 0,
        threads: int | None = None,
    ) -> None:
        self.model_id, self.methods, self.out, self.device, self.seed = model_id, tuple(methods), out, device, seed
        self.loader, self.threads = loader, threads
        self._bundle = None
        use_threads(threads)

    def constructor_kwargs(self) -> dict:
        return {"model_id": self.model_id, "methods": self.methods, "out": self.out, "loader": self.loader,
                "device": self.device, "seed": self.seed, "threads": self.threads}  # fmt: skip

    @property
    def bundle(self):
        if self._bundle is None:
            self._bundle = self.loader(self.model_id, device=self.device)
        return self._bundle

    def columns(self) -> list[tuple[str, pa.DataType]]:
        cols = [("target", pa.int64()), ("target_label", pa.string()), ("maps_npz", pa.string())]
        return cols + [(f"{m}_{s}", pa.float64()) for m in self.methods for s in STATS]

    def values(self, keys, images) -> list[dict]:
        from glimpse.saliency import explain
        from glimpse.saliency.npz import ImageRef, write_npz

        folder = Path(self.out) / "maps"
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for key, image in zip(keys, images):
            maps = explain(self.bundle, image, list(self.methods), seed=self.seed)
            name = hashlib.sha1(key.encode()).hexdigest()[:16] + ".npz"
            (folder / name).write_bytes(write_npz(maps, image=ImageRef.of(image, key)))
            row = {"target": maps[0].target.index, "target_label": maps[0].target_label, "maps_npz": f"maps/{name}"}
            for m in maps:
                row.update({f"{m.method}_{s}": v for s, v in _stats(m.values).items()})
            out.append(row)
        return out


class EvaluateTask(SaliencyTask):
    """Faithfulness per image: for each method's map, the deletion and insertion AUCs of the target's
    probability (Petsiuk et al. 2018, ``steps`` steps; deletion to black, insertion from a blurred copy, as
    :func:`glimpse.evaluation.deletion.deletion_insertion`). The curves of every map of the batch's images are
    scored together by :func:`glimpse.evaluation.deletion.deletion_curves`, their perturbed inputs batched across
    images and methods."""

    name = "evaluate"

    def __init__(self, *, steps: int = 20, **kwargs) -> None:
        super().__init__(**kwargs)
        self.steps = steps

    def constructor_kwargs(self) -> dict:
        return {**super().constructor_kwargs(), "steps": self.steps}

    def columns(self) -> list[tuple[str, pa.DataType]]:
        cols = [("target", pa.int64()), ("target_label", pa.string())]
        return cols + [(f"{m}_{c}", pa.float64()) for m in self.methods for c in ("deletion_auc", "insertion_auc")]

    def values(self, keys, images) -> list[dict]:
        from glimpse.evaluation.deletion import deletion_curves
        from glimpse.saliency import explain

        panels = [explain(self.bundle, image, list(self.methods), seed=self.seed) for image in images]
        pairs = [(image, m) for image, maps in zip(images, panels) for m in maps]
        if not pairs:
            return []
        fractions = np.linspace(0.0, 1.0, self.steps + 1)

        def aucs(fill: str, insertion: bool) -> list[float]:
            maps = [m.values for _, m in pairs]
            targets = [m.target.index for _, m in pairs]
            images_of = [image for image, _ in pairs]
            p = deletion_curves(
                self.bundle, images_of, maps, targets=targets, steps=self.steps, fill=fill, insertion=insertion
            )
            return [float(np.trapezoid(row, fractions)) for row in p]

        # deletion to black and insertion from a blurred copy, as deletion_insertion scores them
        scores = {"deletion": aucs("black", False), "insertion": aucs("blur", True)}
        out, k = [], 0
        for maps in panels:
            row = {"target": maps[0].target.index, "target_label": maps[0].target_label}
            for m in maps:
                row.update({f"{m.method}_{name}_auc": auc[k] for name, auc in scores.items()})
                k += 1
            out.append(row)
        return out
