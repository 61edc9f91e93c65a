"""Multifaceted feature visualisation: one picture per facet of a class.

Nguyen, Yosinski & Clune, "Multifaceted Feature Visualization: Uncovering the Different Types of Features
Learned by Each Neuron in Deep Neural Networks", ICML Visualization workshop (2016). Real images of the class
are embedded by a late layer (its activations averaged over space), clustered with k-means, and gradient
ascent on the class logit starts from each cluster's mean image, so each facet (a close-up, a side view, a
group, ...) gets its own visualisation. Their code ships the clusters, not the clustering; k-means on a late
layer's activations is the usual reading.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from glimpse.lab.common import ModelInput, layer_outputs, model_device, stack_images, to_uint8
from glimpse.lab.featurevis import Objective, Visualization, visualize


def activations(
    model: nn.Module, layer: str, images: Sequence[np.ndarray], inp: ModelInput, *, batch_size: int = 16
) -> np.ndarray:
    """float32 (N, C): ``layer``'s output for each image, averaged over space (its "penultimate" code)."""
    rows = [act.reshape(act.shape[0], act.shape[1], -1).mean(dim=-1).float().cpu().numpy()
            for _, act in layer_outputs(model, layer, images, inp, batch_size)]  # fmt: skip
    return np.concatenate(rows)


@dataclass(frozen=True)
class Facets:
    """Per facet: its members (indices into the images), mean image (uint8 at the model's size) and
    visualisation."""

    labels: np.ndarray  # int (N,): the facet of each image
    members: tuple[tuple[int, ...], ...]
    means: tuple[np.ndarray, ...]
    visualizations: tuple[Visualization, ...]

    def correlations(self) -> np.ndarray:
        """Pairwise Pearson correlation of the facets' visualisations (pixels as one vector)."""
        flat = np.stack([v.image.astype(np.float64).ravel() for v in self.visualizations])
        return np.corrcoef(flat)


def multifaceted(
    model: nn.Module,
    class_index: int,
    images: Sequence[np.ndarray],
    inp: ModelInput,
    *,
    layer: str,
    facets: int = 3,
    steps: int = 128,
    lr: float = 0.05,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Facets:
    """Cluster ``images`` (real images of the class) on ``layer``'s activations into ``facets`` groups with
    k-means and visualise class ``class_index`` from each group's mean image.

    ``progress(done, total)`` counts optimisation steps over all facets.
    """
    from sklearn.cluster import KMeans

    if facets < 1:
        raise ValueError(f"facets: must be at least 1, got {facets}")
    if len(images) < facets:
        raise ValueError(f"images: {facets} facets need at least {facets} images, got {len(images)}")
    codes = activations(model, layer, images, inp)
    labels = KMeans(n_clusters=facets, n_init=10, random_state=seed).fit_predict(codes)
    device = model_device(model)
    pixels = stack_images(list(images), inp.size, device)
    members, means, vis = [], [], []
    objective = Objective("class", int(class_index))
    # larger clusters first: the main facet leads
    order = sorted(range(facets), key=lambda c: (-int(np.sum(labels == c)), c))
    for rank, c in enumerate(order):
        idx = tuple(int(i) for i in np.flatnonzero(labels == c))
        mean = to_uint8(pixels[list(idx)].mean(dim=0))
        members.append(idx)
        means.append(mean)

        def step_progress(done: int, total: int, rank: int = rank) -> None:
            if progress is not None:
                progress(rank * steps + done, facets * steps)

        vis.append(visualize(model, objective, inp, steps=steps, lr=lr, init=mean, seed=seed + rank,
                             progress=step_progress))  # fmt: skip
    remap = {c: rank for rank, c in enumerate(order)}
    return Facets(np.array([remap[int(c)] for c in labels]), tuple(members), tuple(means), tuple(vis))
