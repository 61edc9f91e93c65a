"""The Model lab's cached services, one per tab: feature visualisation, facets, top images and the level-set
traversal (with its written end image), and the offline image pools. Each optimisation loop reports its
progress (jobs.bar) and lets any session waiting for the model go first after every step."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import streamlit as st

from components import jobs, loaders
from components.image_input import BY_DIGEST, ImageChoice
from glimpse.images import sample_crops
from glimpse.lab import (
    Objective,
    Traversal,
    level_set_traversal,
    multifaceted,
    top_examples,
    triangle_confidence,
    visualize,
)
from glimpse.lab.written import WrittenEnd, written_end
from models.lab import class_images, late_layer, model_input


@dataclass(frozen=True)
class Pool:
    """Images for facets or examples: their names, pixels and a digest (the cache key)."""

    names: tuple[str, ...]
    images: tuple[np.ndarray, ...]
    digest: str


BY_POOL = {Pool: lambda pool: pool.digest}


@contextmanager
def _stepping(bundle, label: str):
    """The progress bar of a loop over optimisation steps (jobs.bar), which after every step also lets any session
    waiting for the model go first (``yield_turn``: nothing of the loop is installed on the model between
    steps), so a long optimisation holds the line one step at a time."""
    with jobs.bar(label, unit="step") as report:

        def progress(done: int, total: int) -> None:
            report(done, total)
            bundle.lock.yield_turn()

        yield progress


@st.cache_data(max_entries=16, show_spinner=False)
def visualization(model_id: str, device: str, objective: Objective, steps: int, side: int | None, seed: int):
    bundle = loaders.classifier(model_id, device)
    with _stepping(bundle, "Optimising") as progress, bundle.lock:
        return visualize(
            bundle.model, objective, model_input(bundle).resized(side), steps=steps, seed=seed, progress=progress
        )


@st.cache_data(max_entries=8, show_spinner=False, hash_funcs=BY_POOL)
def facets(model_id: str, device: str, class_index: int, pool: Pool, k: int, steps: int, side: int | None, seed: int):
    bundle = loaders.classifier(model_id, device)
    with _stepping(bundle, "Optimising the facets") as progress, bundle.lock:
        return multifaceted(bundle.model, class_index, list(pool.images), model_input(bundle).resized(side),
                            layer=late_layer(bundle), facets=k, steps=steps, seed=seed, progress=progress)  # fmt: skip


@st.cache_data(max_entries=8, show_spinner=False, hash_funcs=BY_POOL)
def examples(model_id: str, device: str, layer: str, channel: int, pool: Pool, top: int):
    bundle = loaders.classifier(model_id, device)
    with bundle.lock:
        return top_examples(bundle.model, layer, channel, list(pool.images), model_input(bundle), top=top)


@st.cache_data(max_entries=8, show_spinner=False, hash_funcs=BY_DIGEST)
def traversal(model_id: str, device: str, source: ImageChoice, target: ImageChoice, steps: int, step_size: float,
              pthresh: float, seed: int) -> tuple[Traversal, np.ndarray, np.ndarray, WrittenEnd]:  # fmt: skip
    bundle = loaders.classifier(model_id, device)
    inp = model_input(bundle)
    with _stepping(bundle, "Traversing") as progress:
        with bundle.lock:
            tr = level_set_traversal(bundle.model, source.pixels, target.pixels, inp, steps=steps,
                                     step_size=step_size, pthresh=pthresh, seed=seed, progress=progress)  # fmt: skip
            coords, conf = triangle_confidence(bundle.model, source.pixels, target.pixels, tr.end, inp,
                                               tr.source_class, resolution=9)  # fmt: skip
            written = written_end(tr, source.pixels, bundle.model, bundle.preprocess, inp, bundle.labels)
        return tr, coords, conf, written


@st.cache_data(max_entries=8, show_spinner="Ranking the offline pictures…")
def offline_pool(model_id: str, device: str, class_index: int | None) -> Pool:
    """The offline pictures (cached: ranking the crops runs the model on each)."""
    if class_index is None:
        images = sample_crops()
        return Pool(tuple(f"sample crop {i}" for i in range(len(images))), tuple(images), "sample-crops")
    bundle = loaders.classifier(model_id, device)
    with bundle.lock:
        images = class_images(bundle, class_index, count=24)
    return Pool(tuple(f"offline {i}" for i in range(len(images))), tuple(images), f"class-{model_id}-{class_index}")
