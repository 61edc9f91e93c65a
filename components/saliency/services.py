"""The saliency lens's cached, bounded services (maps, deletion/insertion curves, the sanity check, class
sensitivity) and the session's results they leave for the views.

Cache keys are plain values: model id, device, the methods with their parameters as sorted tuples, the
target, the layer, the seed; the image is passed itself and hashed by its digest (``image_input.BY_DIGEST``),
the one convention of every cached service.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import streamlit as st

from components import jobs, loaders, session_results
from components.image_input import BY_DIGEST, ImageChoice
from glimpse.display import data_uri, display_size, resize_image
from glimpse.evaluation.deletion import BLUR_SIGMA, CurveResult, deletion_curves
from glimpse.evaluation.sensitivity import class_sensitivity
from glimpse.saliency import REGISTRY
from glimpse.saliency.layers import LayerActivations, layer_activations

#: Counts real (not cached) service runs per session; the page test reads it to prove that display
#: changes never recompute.
CALLS_KEY = "saliency_service_calls"
RESULT_KEY = "saliency_result"
SCORES_KEY = "saliency_scores"
SANITY_KEY = "saliency_sanity"
SENSITIVITY_KEY = "saliency_class_sensitivity"
#: The maps' deletion fill and insertion start (RISE's: deletion to black, insertion from a blurred copy).
DELETION_FILL, INSERTION_START = "black", "blur"


@dataclass(frozen=True)
class SaliencyRun:
    """What a Compute click produced, kept in the session's results for the display fragment."""

    key: tuple
    maps: tuple  # of glimpse.saliency.SaliencyMap
    image: ImageChoice  # the explained image (faithfulness scores run on it even after the picker changed)
    thumbnail: np.ndarray  # uint8, the image downscaled for display
    model_id: str
    device: str
    seconds: float
    computed: bool = field(default=True)
    thumbnail_uri: str = ""  # the thumbnail as a PNG data URI, encoded once for every redraw

    @property
    def image_name(self) -> str:
        return self.image.name

    @property
    def digest(self) -> str:
        return self.image.digest

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the explained image; the NPZ records it."""
        return tuple(self.image.pixels.shape[:2])


def _count_call() -> None:
    st.session_state[CALLS_KEY] = st.session_state.get(CALLS_KEY, 0) + 1


def _tunnel(noise_tunnel: tuple | None) -> dict | None:
    return dict(noise_tunnel) if noise_tunnel else None


# ------------------------------------------------------------------------------------------ cached services
@st.cache_data(max_entries=16, show_spinner=False, hash_funcs=BY_DIGEST)
def saliency_maps(
    model_id: str,
    device: str,
    image: ImageChoice,
    methods: tuple[tuple[str, tuple], ...],
    target: int | None,
    contrast: int | None,
    layer: str | None,
    seed: int,
    noise_tunnel: tuple | None,
) -> tuple:
    """One ``glimpse.saliency.explain`` call for the whole panel (shared passes are shared)."""
    from glimpse.saliency import Target, explain, top1

    _count_call()
    bundle = loaders.classifier(model_id, device)
    index = top1(bundle, image.pixels) if target is None else target
    # Created inside the cached function so that a cache hit replays (and removes) it harmlessly.
    with jobs.bar("Computing saliency maps") as progress:
        maps = explain(
            bundle,
            image.pixels,
            [(name, dict(params)) for name, params in methods],
            target=Target(int(index), contrast),
            layer=layer,
            seed=seed,
            noise_tunnel=_tunnel(noise_tunnel),
            progress=progress,
        )
    return tuple(maps)


@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=BY_DIGEST)
def curves(
    model_id: str, device: str, image: ImageChoice, maps: tuple[tuple[bytes, tuple[int, int], int], ...], steps: int
) -> tuple[CurveResult, ...]:
    """Deletion and insertion curves (Petsiuk et al. 2018) of the maps of one image, each given as (float32
    bytes, shape, target): their perturbed inputs batched across the maps (:func:`deletion_curves`, the model's
    line taken per batch); the curves of ``glimpse.evaluation.deletion_insertion`` to float32 rounding."""
    _count_call()
    bundle = loaders.classifier(model_id, device)
    values = [np.frombuffer(raw, dtype=np.float32).reshape(shape) for raw, shape, _ in maps]
    targets = [target for _, _, target in maps]
    images = [image.pixels] * len(maps)
    deletion = deletion_curves(bundle, images, values, targets=targets, steps=steps, fill=DELETION_FILL)
    insertion = deletion_curves(
        bundle, images, values, targets=targets, steps=steps, fill=INSERTION_START, insertion=True
    )
    fractions = np.linspace(0.0, 1.0, steps + 1)
    params = {"steps": steps, "deletion_fill": DELETION_FILL, "insertion_start": INSERTION_START, "rank": "value"}
    params = tuple(sorted({**params, "blur_sigma": BLUR_SIGMA}.items()))
    return tuple(
        CurveResult(fractions, d, i, float(np.trapezoid(d, fractions)), float(np.trapezoid(i, fractions)), t, params)
        for d, i, t in zip(deletion, insertion, targets)
    )


@st.cache_data(max_entries=16, show_spinner=False, hash_funcs=BY_DIGEST)
def sanity(
    model_id: str,
    device: str,
    image: ImageChoice,
    method: str,
    params: tuple,
    target: int,
    contrast: int | None,
    layer: str | None,
    seed: int,
    noise_tunnel: tuple | None,
    stages: int,
):
    """Cascading randomisation check of one method (recomputes its map on progressively random copies)."""
    from glimpse.evaluation import randomisation_check
    from glimpse.saliency import Target, explain

    _count_call()
    bundle = loaders.classifier(model_id, device)

    def run(work, pixels, index):
        options = {"layer": layer, "seed": seed, "noise_tunnel": _tunnel(noise_tunnel)}
        (m,) = explain(work, pixels, [(method, dict(params))], target=Target(index, contrast), **options)
        return m.values

    options = {"target": target, "layer": layer, "params": dict(params), "stages": stages, "seed": seed}
    with jobs.bar(f"Sanity check of {method}") as progress:
        return randomisation_check(bundle, image.pixels, method, map_fn=run, progress=progress, **options)


@st.cache_data(max_entries=32, show_spinner=False, hash_funcs=BY_DIGEST)
def layer_summary(model_id: str, device: str, image: ImageChoice, layer: str) -> LayerActivations:
    """Whether ``layer``'s activations for the image go negative (one forward pass)."""
    return layer_activations(loaders.classifier(model_id, device), image.pixels, layer)


@st.cache_data(max_entries=256, show_spinner=False, hash_funcs=BY_DIGEST)
def class_rho(
    model_id: str,
    device: str,
    image: ImageChoice,
    method: str,
    params: tuple,
    layer: str | None,
    seed: int,
    noise_tunnel: tuple | None,
) -> float:
    """Class sensitivity of one method on the image: Spearman ρ of its maps for the most and least likely class."""
    _count_call()
    bundle = loaders.classifier(model_id, device)
    result = class_sensitivity(
        bundle, [image.pixels], [(method, dict(params))], seed=seed, layer=layer, noise_tunnel=_tunnel(noise_tunnel)
    )
    return float(result.rho[0, 0])


# ------------------------------------------------------------------------------------------ session results
def compute(model_id: str, device: str, image: ImageChoice, target, choice) -> SaliencyRun:
    """Run (or fetch from cache) the panel of a ``controls.TargetChoice`` and ``controls.MethodChoice`` and
    wrap it for the display fragment."""
    t0 = time.perf_counter()
    calls = st.session_state.get(CALLS_KEY, 0)
    thumb = resize_image(image.pixels, display_size(image.pixels.shape, 256, enlarge=False))  # display only
    request = (choice.methods, target.index, target.contrast, choice.layer, choice.seed)
    maps = saliency_maps(model_id, device, image, *request, choice.noise_tunnel)
    return SaliencyRun(
        key=(model_id, device, image.digest, *request, choice.noise_tunnel),
        maps=maps,
        image=image,
        thumbnail=thumb,
        thumbnail_uri=data_uri(thumb),
        model_id=model_id,
        device=device,
        seconds=time.perf_counter() - t0,
        computed=st.session_state.get(CALLS_KEY, 0) > calls,
    )


def score(record: SaliencyRun, maps, steps: int) -> None:
    """Deletion/insertion curves of ``maps`` of ``record`` (one cached, batched call), kept in the session."""
    todo = [m for m in maps if not session_results.has((SCORES_KEY, record.key, m.method, steps))]
    if not todo:
        return
    arrays = [np.ascontiguousarray(m.values, dtype=np.float32) for m in todo]
    request = tuple((a.tobytes(), a.shape, int(m.target.index)) for a, m in zip(arrays, todo))
    for m, res in zip(todo, curves(record.model_id, record.device, record.image, request, steps)):
        session_results.put((SCORES_KEY, record.key, m.method, steps), res)


def score_all(record: SaliencyRun, steps: int) -> None:
    """Deletion/insertion curves of every map (one batched step), then each map's class sensitivity, with one
    progress bar and a Cancel button."""
    label = "scores of every map"
    with jobs.heavy(label, cancel_message="Scoring stopped: the maps scored so far are kept."):
        progress = jobs.Progress(label, len(record.maps) + 1, unit="step")
        progress.step(0, "deletion and insertion of every map")
        score(record, record.maps, steps)
        for k, m in enumerate(record.maps, start=1):
            progress.step(k, f"{REGISTRY[m.method].info.label}: class sensitivity")
            sensitivity(record, m)
        progress.done()


def sanity_check(record: SaliencyRun, m, stages: int):
    """Cascading randomisation check of one map's method (cached), kept in the session."""
    where = (record.model_id, record.device, record.image)
    how = (m.method, m.params, m.target.index, m.target.contrast, m.layer, m.seed, m.noise_tunnel)
    res = sanity(*where, *how, stages)
    session_results.put((SANITY_KEY, record.key, m.method), res)
    return res


def sensitivity(record: SaliencyRun, m) -> float:
    """Class sensitivity of one map's method (cached), kept in the session."""
    nt = None if m.noise_tunnel is None else tuple(sorted(dict(m.noise_tunnel).items()))
    rho = class_rho(record.model_id, record.device, record.image, m.method, tuple(m.params), m.layer, m.seed, nt)
    session_results.put((SENSITIVITY_KEY, record.key, m.method), rho)
    return rho
