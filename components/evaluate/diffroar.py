"""DiffROAR on BlockDigits (retrain on each map's top or bottom pixels) and the paper's own synthetic check."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components import costs, jobs, loaders
from components.evaluate.base import BenchmarkTab, Texts, downloads, label, merged_by, method_picker, step
from components.evaluate.leakage import MODELS
from glimpse.evaluation.blockdigits import blockdigits
from glimpse.evaluation.diffroar import (
    LEVELS,
    SIDES,
    DiffRoarResult,
    blockdigits_diffroar,
    blockdigits_maps,
    cache,
)
from glimpse.evaluation.files import EvaluationFiles
from glimpse.evaluation.inversion import LEVELS as INVERSION_LEVELS
from glimpse.evaluation.inversion import PAPER, InversionResult, feature_inversion
from glimpse.evaluation.leakage import BENCHMARK_PARAMS, blockdigits_params

ROAR_KEY = "evaluate_diffroar"
INVERSION_KEY = "evaluate_inversion"
#: seconds per epoch of one retraining on 1,438 masked images (measured on two CPU cores: ≈ 10 s at 10 epochs)
EPOCH_S = 1.0


@dataclass(frozen=True)
class RoarRequest:
    models: tuple[str, ...]
    methods: tuple[str, ...]
    levels: tuple[float, ...]
    seeds: int
    epochs: int
    device: str


def _maps(request: RoarRequest, model_id: str, method: str, progress=None):
    """The (train, test) maps a curve's levels retrain on, computed once (and kept) before its first level."""
    bundle = loaders.classifier(model_id, request.device)
    key = ("roar-maps", model_id, request.device, method)
    return jobs.remembered(key, lambda: blockdigits_maps(bundle, method, blockdigits_params(method), progress=progress))


def _maps_step(request: RoarRequest, model_id: str, method: str, progress) -> None:
    """The maps computed (and kept) before a curve's first level; no part of the result."""
    _maps(request, model_id, method, progress)


def diffroar_level(request: RoarRequest, model_id: str, method: str, k: float, progress=None) -> DiffRoarResult:
    """One level of one curve: ``2 × seeds`` retrainings (each kept on disk as it ends)."""
    from models.blockdigits import BlockDigitsCNN

    return blockdigits_diffroar(
        loaders.classifier(model_id, request.device),
        method,
        None,  # the benchmark's settings for 64×32 images
        BlockDigitsCNN,
        maps=_maps(request, model_id, method, progress),
        levels=(k,),
        seeds=range(request.seeds),
        epochs=request.epochs,
        progress=progress,
    )


class DiffRoarTab(BenchmarkTab):
    texts = Texts(ROAR_KEY, "Run DiffROAR", "DiffROAR (BlockDigits)", "step", "Could not run DiffROAR", "retrainings")
    empty, stem = "Pick models, methods and levels and press **Run DiffROAR**.", "diffroar"

    def controls(self) -> RoarRequest | None:
        c1, c2 = st.columns([1, 2])
        with c1:
            models = st.pills("Models", MODELS, selection_mode="multi", default=list(MODELS), key="roar_models")
            seeds = st.slider("Retrainings per level and side", 1, 3, 2, key="roar_seeds")
            epochs = st.slider("Epochs per retraining", 2, 20, 10, key="roar_epochs")
        with c2:
            methods = method_picker(["gradient"], key="roar_methods")
            levels = level_picker("Pixels kept (k)", LEVELS, lambda k: f"{100 * k:g} %", key="roar_levels")
        if not (models and methods and levels):
            return None
        return RoarRequest(tuple(models), tuple(methods), tuple(sorted(levels)), int(seeds), int(epochs), self.device)

    def notes(self, request: RoarRequest) -> tuple[str, ...]:
        cells = len(request.models) * len(request.methods) * len(request.levels) * len(SIDES) * request.seeds
        return (
            f"{cells} retrainings of a BlockDigits CNN from scratch ({request.epochs} epochs on 1,438 masked images "
            "each), finished ones kept in the user cache, so a stopped run resumes where it stopped",
        )

    def steps(self, request: RoarRequest) -> list[jobs.Step]:
        images = len(blockdigits("train", seed=0)) + len(blockdigits("test", seed=0))
        level_s = len(SIDES) * request.seeds * request.epochs * EPOCH_S
        out = []
        for model_id in request.models:
            for method in request.methods:
                name = f"{model_id}, {label(method)}"
                explain_s = costs.explain_seconds(
                    model_id, request.device, costs.as_methods([method], BENCHMARK_PARAMS)
                )
                out.append(
                    jobs.Step(
                        f"{name}: maps of {images:,} images",
                        lambda progress, m=model_id, method=method: _maps_step(request, m, method, progress),
                        None if explain_s is None else images * explain_s,
                    )
                )
                out += [
                    step(
                        f"{name}: k = {100 * k:g} %",
                        ("roar-level", model_id, request.device, method, k, request.seeds, request.epochs),
                        lambda progress, m=model_id, method=method, k=k: diffroar_level(
                            request, m, method, k, progress
                        ),
                        level_s,
                    )
                    for k in request.levels
                ]
        return out

    def combine(self, request: RoarRequest, parts: list) -> tuple[DiffRoarResult, ...]:
        curves = [r for r in parts if isinstance(r, DiffRoarResult)]
        groups = [(m, method) for m in request.models for method in request.methods]
        return merged_by(curves, lambda r: (r.model_id, r.method), groups, DiffRoarResult.merge)

    def table(self, request: RoarRequest, results) -> pd.DataFrame:
        return pd.DataFrame([row for r in results for row in r.rows()])

    def preview(self, request: RoarRequest, results, step: int | None = None) -> None:
        if results:
            curve_chart(results, key=f"roar_chart_{step}", label=lambda r: f"{r.model_id}: {label(r.method)}")

    def view(self, request: RoarRequest, results) -> None:
        curve_chart(results, key="roar_chart", label=lambda r: f"{r.model_id}: {label(r.method)}")
        st.caption(
            "Above 0: the map ranks the pixels that decide the class first. Below 0: it ranks them last (the "
            'paper\'s "feature inversion"). Bars: the spread over retrainings.'
        )
        super().preview(request, results)
        downloads(self.files(request, results), key=self.key)


def level_picker(text: str, levels: tuple[float, ...], show: Callable[[float], str], *, key: str) -> list[float]:
    """The levels k to retrain at (all of them at first)."""
    return st.multiselect(text, list(levels), default=list(levels), format_func=show, key=key)


def curve_chart(results, *, key: str, label: Callable[[DiffRoarResult], str]) -> None:
    """DiffROAR(k) against k, one line per curve, the spread over retrainings as bars."""
    fig = go.Figure()
    for r in results:
        d = r.diffroar
        fig.add_scatter(
            x=[100 * k for k in r.levels],
            y=d.mean(1),
            error_y={"type": "data", "array": d.std(1), "thickness": 1},
            mode="lines+markers",
            name=label(r),
        )
    fig.add_hline(y=0, line_dash="dash", line_color="grey")
    fig.update_layout(
        xaxis_title="kept, k (%)",
        yaxis_title="DiffROAR = acc(top-k) − acc(bottom-k)",
        height=420,
        margin={"t": 20},
        legend={"orientation": "h", "y": 1.1},
    )
    st.plotly_chart(fig, width="stretch", config={"displayModeBar": False}, key=key)


# ------------------------------------------------------------------------------------------ the synthetic check
@dataclass(frozen=True)
class InversionRequest:
    width: int
    epochs: int
    eps: float
    levels: tuple[float, ...]
    seeds: int


def inversion_result(request: InversionRequest, progress=None) -> InversionResult:
    """Both synthetic networks, their gradients' scores and DiffROAR (retrainings kept on disk)."""
    return feature_inversion(
        width=request.width,
        epochs=request.epochs,
        eps=request.eps,
        levels=request.levels,
        seeds=range(request.seeds),
        cache_dir=cache(),
        progress=progress,
    )


class InversionTab(BenchmarkTab):
    """The paper's own check, where its sign shows: two small networks trained here, no shared model."""

    texts = Texts(INVERSION_KEY, "Run the synthetic check", "feature inversion (synthetic)", "step",
                  "The synthetic check failed", "retrainings")  # fmt: skip
    stem = "inversion"

    def controls(self) -> InversionRequest | None:
        st.subheader("The paper's own check: feature inversion on synthetic data")
        st.caption(
            "Ten coordinates, one of them ±1 (its sign is the label), the others 0. A standard one-hidden-layer "
            "network's largest |gradient| coordinate is almost never that signal, and its smallest often is; an "
            "adversarially trained network's largest is. DiffROAR retrains on the top or bottom coordinates of "
            "each point's gradient: negative for the standard network, positive for the robust one. Scaled to a "
            "CPU (the paper: width 25,000, 500 epochs, ε = 0.45)."
        )
        c1, c2, c3, c4 = st.columns(4)
        width = c1.select_slider("Hidden units", [250, 500, 1000, 2000], 500, key="inv_width")
        epochs = c2.select_slider("Epochs", [40, 80, 160], 40, key="inv_epochs")
        eps = c3.select_slider("Robust ε (ℓ∞)", [0.2, 0.3, 0.45], 0.3, key="inv_eps")
        seeds = c4.slider("Retrainings per level and side", 1, 3, 2, key="inv_seeds")
        levels = level_picker(
            "Coordinates kept (k, of 10)", INVERSION_LEVELS, lambda k: f"{round(10 * k)}", key="inv_levels"
        )
        if not levels:
            return None
        return InversionRequest(int(width), int(epochs), float(eps), tuple(sorted(levels)), int(seeds))

    def notes(self, request: InversionRequest) -> tuple[str, ...]:
        return ("about a minute on two cores at the defaults; finished retrainings are kept",)

    def steps(self, request: InversionRequest) -> list[jobs.Step]:
        run = functools.partial(inversion_result, request)
        return [step("two networks and their DiffROAR", ("inversion", request), run, None)]

    def combine(self, request: InversionRequest, parts: list) -> InversionResult:
        return parts[-1]

    def table(self, request: InversionRequest, result: InversionResult) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "model": r["model"],
                    "ε": r["eps"],
                    "accuracy": r["test_accuracy"],
                    "P[top = signal]": r["p_top_signal"],
                    "P[bottom = signal]": r["p_bottom_signal"],
                    "attribution quality": r["attribution_quality"],
                    "paper": PAPER["attribution_quality"][i],
                }
                for i, r in enumerate(result.rows())
            ]
        )

    def files(self, request: InversionRequest, result: InversionResult) -> EvaluationFiles:
        return result.files(self.stem)

    def view(self, request: InversionRequest, result: InversionResult) -> None:
        self.preview(request, result)
        curve_chart(result.curves(), key="inv_chart", label=lambda r: r.model_id.replace("synthetic-", "") + " network")
        downloads(self.files(request, result), key=self.key)
