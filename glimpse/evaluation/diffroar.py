"""DiffROAR (Shah, Jain & Netrapalli, "Do Input Gradients Highlight Discriminative Features?", NeurIPS 2021).

Does a method rank the discriminative pixels first? For a level k (the fraction of pixels kept), every image
of a data set keeps only the top-k pixels of its own map (by magnitude; the others are set to the training
set's mean image), a model is trained from scratch on the masked training set and tested on the equally
masked test set; the same with the bottom-k pixels kept. Then

    DiffROAR(k) = accuracy(top-k kept) − accuracy(bottom-k kept)

> 0: the map ranks the discriminative pixels first; ≈ 0: no better than a random order; < 0: it ranks them
last ("feature inversion"). The paper: standard models' input gradients give DiffROAR < 0 at small k on
BlockMNIST, adversarially trained models' give DiffROAR > 0. Each level and side is retrained for several
seeds; the spread over seeds is reported.

Every retraining is one cell of a cache (a JSON file per curve under ``cache_dir``), so an interrupted run
resumes where it stopped and a finished one is read back.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from glimpse.evaluation.result import Result, summary
from glimpse.evaluation.stats import mean_sd, same_settings

#: the fractions of pixels kept
LEVELS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
SIDES = ("top", "bottom")
LOG = logging.getLogger(__name__)


def keep_masks(maps: np.ndarray, k: float, side: str, *, seed: int = 0) -> np.ndarray:
    """bool (N, H, W): per image, the ``k`` fraction of pixels with the largest (``"top"``) or smallest
    (``"bottom"``) ``|map|``; ties are broken at random (from ``seed``), so a flat map keeps a random subset.

    >>> m = np.array([[[3.0, -4.0], [1.0, 0.0]]])
    >>> keep_masks(m, 0.5, "top")[0].astype(int).tolist(), keep_masks(m, 0.5, "bottom")[0].astype(int).tolist()
    ([[1, 1], [0, 0]], [[0, 0], [1, 1]])
    """
    if side not in SIDES:
        raise ValueError(f"side: 'top' or 'bottom', got {side!r}")
    if not 0 < k <= 1:
        raise ValueError(f"k: a fraction in (0, 1], got {k}")
    maps = np.abs(np.asarray(maps, dtype=np.float64))
    n, h, w = maps.shape
    flat = maps.reshape(n, -1)
    keep = max(1, round(k * h * w))
    tie = np.random.default_rng(seed).random(flat.shape)
    key = -flat if side == "top" else flat
    order = np.lexsort((tie, key), axis=1)[:, :keep]  # primary key last
    out = np.zeros_like(flat, dtype=bool)
    np.put_along_axis(out, order, True, axis=1)
    return out.reshape(n, h, w)


def fit(
    make_model: Callable[[], torch.nn.Module],
    train: tuple[torch.Tensor, torch.Tensor],
    *,
    seed: int,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
) -> torch.nn.Module:
    """Train ``make_model()`` from scratch (Adam, cosine decay, cross-entropy); returned in eval mode.

    Inputs are model-ready tensors (already normalised); deterministic from ``seed`` on a given machine.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    x, y = train
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


def accuracy(model: torch.nn.Module, test: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Share of ``test`` the model classifies right."""
    tx, ty = test
    with torch.no_grad():
        correct = sum(int((model(tx[i : i + 256]).argmax(1) == ty[i : i + 256]).sum()) for i in range(0, len(tx), 256))
    return correct / len(tx)


def fit_and_score(
    make_model: Callable[[], torch.nn.Module],
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    *,
    seed: int,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
) -> float:
    """Train ``make_model()`` from scratch (:func:`fit`) and return its accuracy on ``test``."""
    return accuracy(fit(make_model, train, seed=seed, epochs=epochs, batch_size=batch_size, lr=lr), test)


@dataclass(frozen=True)
class DiffRoarResult(Result):
    """``accuracy[side][level, seed]`` of a retrained model, and the curve DiffROAR(k) = top − bottom."""

    benchmark: ClassVar[str] = "diffroar"
    model_id: str
    method: str
    params: dict[str, Any]
    levels: tuple[float, ...]
    seeds: tuple[int, ...]
    accuracy: dict[str, np.ndarray]
    epochs: int

    @classmethod
    def merge(cls, parts: Sequence[DiffRoarResult]) -> DiffRoarResult:
        """One curve of parts run level by level (a job's steps), equal to one call over all their levels, in
        increasing k."""
        same_settings(parts, ("model_id", "method", "params", "seeds", "epochs"), "DiffROAR")
        if len(parts) == 1:
            return parts[0]
        levels = [(k, p, i) for p in parts for i, k in enumerate(p.levels)]
        if len({k for k, _, _ in levels}) != len(levels):
            raise ValueError("DiffROAR: parts share a level")
        levels.sort(key=lambda t: t[0])
        accuracy = {side: np.stack([p.accuracy[side][i] for _, p, i in levels]) for side in SIDES}
        a = parts[0]
        return cls(a.model_id, a.method, a.params, tuple(k for k, _, _ in levels), a.seeds, accuracy, a.epochs)

    @property
    def diffroar(self) -> np.ndarray:
        """(levels, seeds): accuracy with the top-k kept minus accuracy with the bottom-k kept."""
        return self.accuracy["top"] - self.accuracy["bottom"]

    def rows(self) -> list[dict[str, Any]]:
        """One row per level: DiffROAR's mean and sd over seeds, and the two accuracies' means."""
        d = self.diffroar
        return [
            {
                "model": self.model_id,
                "method": self.method,
                "k": k,
                **summary(d[i], "diffroar"),
                "accuracy_top": mean_sd(self.accuracy["top"][i])[0],
                "accuracy_bottom": mean_sd(self.accuracy["bottom"][i])[0],
            }
            for i, k in enumerate(self.levels)
        ]

    def arrays(self) -> dict[str, np.ndarray]:
        """For an NPZ: ``<model>.<method>.accuracy_top`` and ``….accuracy_bottom`` (levels, seeds), and
        ``….levels``."""
        stem = f"{self.model_id}.{self.method}"
        return {
            f"{stem}.levels": np.asarray(self.levels, np.float64),
            f"{stem}.accuracy_top": self.accuracy["top"],
            f"{stem}.accuracy_bottom": self.accuracy["bottom"],
        }

    def made_with(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "method": self.method,
            "params": self.params,
            "levels": list(self.levels),
            "seeds": list(self.seeds),
            "epochs": self.epochs,
            "masked_with": "the training set's mean image",
        }


def _cache_file(cache_dir: Path | None, key: dict) -> Path | None:
    if cache_dir is None:
        return None
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"diffroar-{digest}.json"


def diffroar(
    make_model: Callable[[], torch.nn.Module],
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    train_maps: np.ndarray,
    test_maps: np.ndarray,
    *,
    normalise: Callable[[torch.Tensor], torch.Tensor],
    model_id: str = "",
    method: str = "",
    params: dict | None = None,
    levels: Sequence[float] = LEVELS,
    seeds: Sequence[int] = (0, 1),
    epochs: int = 10,
    lr: float = 1e-3,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[float, str], None] | None = None,
    workers: int = 1,
) -> DiffRoarResult:
    """The DiffROAR curve of one method's maps (module docstring).

    Parameters
    ----------
    make_model : a fresh, untrained model of images shaped like ``normalise(images)``.
    train_images, test_images : float (N, C, H, W) in [0, 1] (what ``normalise`` turns into model input).
    train_labels, test_labels : int (N,).
    train_maps, test_maps : (N, H, W), each image's map (any sign; ranked by magnitude).
    normalise : pixels in [0, 1] -> model input.
    model_id, method, params : what the maps are of (recorded, and part of the cache key).
    levels, seeds, epochs, lr : the fractions kept, the retraining seeds, their epochs and Adam's learning rate.
    cache_dir : where finished retrainings are kept (one JSON file per curve); None keeps nothing.
    progress : called with (fraction done, message) before each retraining (with ``workers``: after each).
    workers : retrainings run at once, each in its own process with an equal share of the CPU threads
        (``make_model`` must then be picklable: a class or a ``functools.partial``, not a lambda). 1: in this
        process, one after the other.
    """
    levels, seeds = tuple(float(k) for k in levels), tuple(int(s) for s in seeds)
    train_x = torch.as_tensor(np.asarray(train_images, np.float32))
    test_x = torch.as_tensor(np.asarray(test_images, np.float32))
    if train_x.ndim != 4 or train_maps.shape != (train_x.shape[0], *train_x.shape[2:]):
        raise ValueError(f"train_maps: shape {train_maps.shape} does not match the images {tuple(train_x.shape)}")
    if test_maps.shape != (test_x.shape[0], *test_x.shape[2:]):
        raise ValueError(f"test_maps: shape {test_maps.shape} does not match the images {tuple(test_x.shape)}")
    train_y, test_y = torch.as_tensor(train_labels).long(), torch.as_tensor(test_labels).long()
    mean = train_x.mean(0, keepdim=True)  # the training set's mean image
    key = {
        "model": model_id,
        "method": method,
        "params": params or {},
        "epochs": epochs,
        "lr": lr,
        "maps": hashlib.sha1(np.ascontiguousarray(train_maps, np.float32).tobytes()).hexdigest()[:16],
        "images": hashlib.sha1(train_x.numpy().tobytes()).hexdigest()[:16],
        "test_maps": hashlib.sha1(np.ascontiguousarray(test_maps, np.float32).tobytes()).hexdigest()[:16],
        "test_images": hashlib.sha1(test_x.numpy().tobytes()).hexdigest()[:16],
    }
    path = _cache_file(Path(cache_dir) if cache_dir is not None else None, key)
    done: dict[str, float] = json.loads(path.read_text())["cells"] if path is not None and path.exists() else {}
    report = progress or (lambda f, m: None)
    total = len(levels) * len(SIDES) * len(seeds)
    accuracy = {side: np.full((len(levels), len(seeds)), np.nan) for side in SIDES}

    def masked(k: float, side: str):
        keep_train = torch.from_numpy(keep_masks(train_maps, k, side))[:, None]
        keep_test = torch.from_numpy(keep_masks(test_maps, k, side, seed=1))[:, None]
        return (
            (normalise(torch.where(keep_train, train_x, mean)), train_y),
            (normalise(torch.where(keep_test, test_x, mean)), test_y),
        )

    def save() -> None:  # after every retraining: an interrupted run resumes here
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"key": key, "cells": done}))
            tmp.replace(path)

    todo = [(k, side, seed) for k in levels for side in SIDES for seed in seeds if f"{k:g}/{side}/{seed}" not in done]
    finished = total - len(todo)
    options = {"epochs": epochs, "lr": lr}
    if workers > 1 and len(todo) > 1:
        finished = _retrain_in_parallel(make_model, todo, masked, options, workers, done, save, report, finished, total)
    else:
        data = {}
        for k, side, seed in todo:
            report(finished / total, f"k = {k:g}, {side} kept, seed {seed} ({finished + 1} of {total})")
            if (k, side) not in data:  # built only for a level and side with a cell not in the cache
                data = {(k, side): masked(k, side)}
            done[f"{k:g}/{side}/{seed}"] = fit_and_score(make_model, *data[k, side], seed=seed, **options)
            save()
            finished += 1
    for i, k in enumerate(levels):
        for side in SIDES:
            for j, seed in enumerate(seeds):
                accuracy[side][i, j] = done[f"{k:g}/{side}/{seed}"]
    report(1.0, "done")
    if not all(math.isfinite(v) for a in accuracy.values() for v in a.ravel()):
        raise RuntimeError("diffroar: a retraining gave no accuracy")
    return DiffRoarResult(model_id, method, dict(params or {}), levels, seeds, accuracy, epochs)


def _retrain(make_model, train, test, seed: int, options: dict, threads: int) -> float:
    """One retraining in a worker process (:func:`fit_and_score` on ``threads`` CPU threads)."""
    torch.set_num_threads(threads)
    return fit_and_score(make_model, train, test, seed=seed, **options)


def _retrain_in_parallel(make_model, todo, masked, options, workers, done, save, report, finished, total) -> int:
    """Run the ``todo`` cells (level, side, seed) on ``workers`` processes; record each in ``done`` as it ends."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    import torch.multiprocessing as tmp

    workers = min(workers, len(todo))
    threads = max(1, torch.get_num_threads() // workers)
    report(finished / total, f"{len(todo)} retrainings on {workers} processes")
    pool = ProcessPoolExecutor(workers, mp_context=tmp.get_context("spawn"))
    try:
        running = {}
        pending = list(todo)
        data: dict = {}
        while pending or running:
            while pending and len(running) < 2 * workers:  # a bounded queue: masked sets are built as needed
                k, side, seed = pending.pop(0)
                if (k, side) not in data:
                    data = {key: v for key, v in data.items() if any(key == (c[0], c[1]) for c in pending)}
                    data[k, side] = masked(k, side)
                future = pool.submit(_retrain, make_model, *data[k, side], seed, options, threads)
                running[future] = f"{k:g}/{side}/{seed}"
            ended, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in ended:
                cell = running.pop(future)
                done[cell] = future.result()
                save()
                finished += 1
                k, side, seed = cell.split("/")
                report(finished / total, f"k = {k}, {side} kept, seed {seed} done ({finished} of {total})")
    except BaseException:  # a failed retraining or a stop: queued ones are dropped, finished ones were saved
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return finished


def explain_all(
    bundle,
    images: Sequence[np.ndarray],
    labels: Sequence[int],
    method: str,
    params: dict | None = None,
    *,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> np.ndarray:
    """(N, H, W) float32: ``method``'s map of each image's own label, at the model's input resolution."""
    from glimpse.saliency import explain

    report = progress or (lambda f, m: None)
    out = []
    for i, (image, label) in enumerate(zip(images, labels)):
        if i % 64 == 0:
            report(i / len(images), f"{method} maps: {i} of {len(images)}")
        (m,) = explain(bundle, image, [(method, dict(params or {}))], target=int(label), seed=seed)
        out.append(m.values)
    return np.stack(out).astype(np.float32)


def blockdigits_maps(
    bundle, method: str, params: dict | None = None, *, progress: Callable[[float, str], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(train maps, test maps) of ``method`` on BlockDigits (placements of seed 0), each image's own label: what
    :func:`blockdigits_diffroar` retrains on. Compute them once to run its levels one at a time (``maps=``)."""
    from glimpse.evaluation.blockdigits import blockdigits

    report = progress or (lambda f, m: None)
    parts = (blockdigits("train", seed=0), blockdigits("test", seed=0))
    total, before, out = sum(len(p) for p in parts), 0, []
    for part in parts:
        images = [part.rgb(i) for i in range(len(part))]

        def within(f: float, m: str, part=part, before=before) -> None:
            report((before + f * len(part)) / total, f"{part.split}: {m}")

        out.append(explain_all(bundle, images, part.labels, method, params, progress=within))
        before += len(part)
    return out[0], out[1]


def cache() -> Path:
    """Where finished retrainings are kept: ``diffroar/`` under the user cache (``GLIMPSE_CACHE_DIR``), shared by
    the command line, the page and the synthetic check, so any of them resumes what another stopped."""
    from glimpse.saliency.batching import cache_dir

    return cache_dir() / "diffroar"


def normaliser(bundle) -> Callable[[torch.Tensor], torch.Tensor]:
    """Pixels in [0, 1] (N, 3, H, W) -> ``bundle``'s model input, ``(x − mean) / std`` per channel: what the
    retrained copies of its model see."""
    mean = torch.tensor(bundle.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(bundle.std, dtype=torch.float32).view(1, 3, 1, 1)
    return functools.partial(_normalise, mean=mean, std=std)


def _normalise(x: torch.Tensor, *, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x - mean) / std


def blockdigits_diffroar(
    bundle,
    method: str,
    params: dict | None,
    make_model: Callable[[], torch.nn.Module],
    normalise: Callable[[torch.Tensor], torch.Tensor] | None = None,
    **options: Any,
) -> DiffRoarResult:
    """DiffROAR of ``method``'s maps of ``bundle`` (a BlockDigits classifier) on BlockDigits: the training part
    (placements of seed 0) to retrain ``make_model()`` on, the test part to score; ``params`` as given (None: the
    benchmark's settings for 64×32 images, :func:`~glimpse.evaluation.leakage.blockdigits_params`), ``normalise``
    the bundle's own (:func:`normaliser`) unless given, ``options`` as for :func:`diffroar` (``cache_dir``: the
    user cache, :func:`cache`, unless given), and ``maps``: the (train, test) maps of :func:`blockdigits_maps`,
    when already computed."""
    from glimpse.evaluation.blockdigits import blockdigits
    from glimpse.evaluation.leakage import blockdigits_params

    params = blockdigits_params(method) if params is None else params
    maps = options.pop("maps", None)
    if maps is None:
        maps = blockdigits_maps(bundle, method, params, progress=options.get("progress"))
    options.setdefault("cache_dir", cache())
    train, test = blockdigits("train", seed=0), blockdigits("test", seed=0)
    (train_x, train_y), (test_x, test_y) = train.tensors(), test.tensors()
    return diffroar(
        make_model,
        train_x.numpy(),
        train_y.numpy(),
        test_x.numpy(),
        test_y.numpy(),
        maps[0],
        maps[1],
        normalise=normaliser(bundle) if normalise is None else normalise,
        model_id=bundle.model_id,
        method=method,
        params=params,
        **options,
    )


def folder_diffroar(
    data,
    methods: Sequence[tuple[str, dict]],
    architecture: Callable[..., torch.nn.Module],
    wrap: Callable[..., Any],
    *,
    model_id: str,
    epochs: int = 10,
    progress_of: Callable[[str], Callable[[float, str], None] | None] = lambda name: None,
    **options: Any,
) -> list[DiffRoarResult]:
    """DiffROAR on a small data set of the user's (:class:`~glimpse.evaluation.folders.FolderData`): a model of
    ``architecture`` trained on its training part (:meth:`~glimpse.evaluation.folders.FolderData.split`, seed 0)
    is the model explained, and every retraining is of the same architecture.

    ``architecture(input_hw, classes=n)`` builds a fresh model (a class or a ``functools.partial``: the
    retrainings may run in other processes); ``wrap(model_id=…, model=…, labels=…, input_size=…, mean=…,
    std=…)`` makes the trained model a bundle to explain (pixels scaled to (x − 0.5) / 0.5); ``progress_of(method)``
    the progress callback of each method's curve; ``options`` as for :func:`diffroar` (``cache_dir``: the user
    cache unless given). The explained model's accuracy on the test part is logged."""
    side = int(data.images.shape[1])
    make_model = functools.partial(architecture, (side, side), classes=len(data.classes))
    train, test = data.split(seed=0)
    x = torch.from_numpy(data.images).permute(0, 3, 1, 2).float().div(255.0)
    y = torch.from_numpy(data.labels)
    normalise = functools.partial(_normalise, mean=torch.tensor(0.5), std=torch.tensor(0.5))
    model = fit(make_model, (normalise(x[train]), y[train]), seed=0, epochs=epochs)
    LOG.info(
        "%s: the explained model reaches %.3f on the test part",
        model_id,
        accuracy(model, (normalise(x[test]), y[test])),
    )
    for p in model.parameters():
        p.requires_grad_(False)
    bundle = wrap(
        model_id=model_id, model=model, labels=data.classes, input_size=(side, side), mean=(0.5,) * 3, std=(0.5,) * 3
    )
    options.setdefault("cache_dir", cache())
    results = []
    for name, params in methods:
        maps = explain_all(bundle, list(data.images), data.labels, name, params)
        results.append(
            diffroar(
                make_model,
                x[train].numpy(),
                data.labels[train],
                x[test].numpy(),
                data.labels[test],
                maps[train],
                maps[test],
                normalise=normalise,
                model_id=model_id,
                method=name,
                params=params,
                epochs=epochs,
                progress=progress_of(name),
                **options,
            )
        )
    return results


def plot_png(
    results: Sequence[DiffRoarResult], *, title: str = "DiffROAR on BlockDigits", xlabel: str = "pixels kept, k (%)"
) -> bytes:
    """The curves as a PNG: DiffROAR(k) against k, one line per (model, method), the spread over seeds as bars."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for r in results:
        d = r.diffroar
        ax.errorbar(
            [100 * k for k in r.levels],
            d.mean(1),
            yerr=d.std(1),
            marker="o",
            capsize=3,
            label=f"{r.model_id}: {r.method}",
        )
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("DiffROAR = acc(top-k) − acc(bottom-k)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
