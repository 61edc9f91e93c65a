"""Leakage into BlockDigits' null block, per model and method (:mod:`glimpse.evaluation.leakage`).

Every BlockDigits image holds a digit (the signal) and a fixed patch that carries nothing about the label (the
null block). A faithful map puts its evidence on the digit; the benchmark measures how much does not.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components import costs, jobs, loaders
from components.evaluate.base import BenchmarkTab, Texts, downloads, label, merged_by, method_picker, step
from glimpse.display import colour_range, overlay, resize_image, with_colour_bar
from glimpse.evaluation.blockdigits import blockdigits
from glimpse.evaluation.leakage import BENCHMARK_PARAMS, TOPK, LeakageResult, leakage_benchmark
from glimpse.export import MapEntry, RunRecord, bundle_bytes
from glimpse.saliency import REGISTRY, explain

MODELS = ("blockdigits-standard", "blockdigits-robust")
#: methods selected at first: one per family, quick on 64×32 images
DEFAULT_METHODS = ("gradient", "input_x_gradient", "integrated_gradients", "smoothgrad", "gradcam", "occlusion")
RESULT_KEY = "evaluate_blockdigits"
TEST_IMAGES = 359
#: images per step: a step of the default panel takes about a second on two cores
CHUNK = 10


@dataclass(frozen=True)
class Request:
    models: tuple[str, ...]
    methods: tuple[str, ...]
    images: int
    seed: int
    device: str

    @property
    def panel(self) -> costs.Methods:
        return costs.as_methods(self.methods, BENCHMARK_PARAMS)


def leakage_part(request: Request, model_id: str, first: int, n: int, progress=None) -> LeakageResult:
    """The leakage of ``request``'s methods on images ``first`` … ``first + n - 1`` of the test split."""
    return leakage_benchmark(
        loaders.classifier(model_id, request.device),
        blockdigits("test", seed=0),
        [(name, dict(params)) for name, params in request.panel],
        images=n,
        first=first,
        seed=request.seed,
        progress=progress,
    )


def parts(request: Request) -> list[tuple[str, int, int]]:
    """(model, first image, images) of every step, model by model."""
    return [(m, f, min(CHUNK, request.images - f)) for m in request.models for f in range(0, request.images, CHUNK)]


def combine(request: Request, results: list[LeakageResult]) -> tuple[LeakageResult, ...]:
    """One result per model (of the images finished so far), in the request's order."""
    return merged_by(results, lambda r: r.model_id, request.models, LeakageResult.merge)


def results_of(request: Request) -> tuple[LeakageResult, ...]:
    """The whole run outside a job (its steps remembered as the job's are)."""
    return combine(request, [step.run(lambda f, m: None) for step in LeakageTab(device=request.device).steps(request)])


def table(results: tuple[LeakageResult, ...]) -> pd.DataFrame:
    """One row per model and method: accuracy, signal mass and the null share of the top-k % pixels, in %."""
    rows = []
    for r in results:
        for row in r.rows():
            out = {
                "model": r.model_id,
                "images": r.images,
                "method": row["label"],
                "signal mass %": 100 * row["signal_mass"],
            }
            out.update({f"null top {k} %": 100 * v for k, v in row["null_topk"].items()})
            rows.append(out)
    return pd.DataFrame(rows)


class LeakageTab(BenchmarkTab):
    texts = Texts(RESULT_KEY, "Run", "leakage (BlockDigits)", "batch", "Could not run the benchmark", "batches")
    empty, stem = "Pick models and methods and press **Run**.", "blockdigits_leakage"
    precision = 1

    def controls(self) -> Request | None:
        c1, c2 = st.columns([1, 2])
        with c1:
            models = st.pills("Models", MODELS, selection_mode="multi", default=list(MODELS), key="eval_models")
            images = st.slider(
                "Test images", 10, TEST_IMAGES, 50, step=10, key="eval_images", help="Scored per model; more is slower."
            )
            seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="eval_seed", help="Seeds the methods' random draws.")
        with c2:
            methods = method_picker(
                DEFAULT_METHODS, key="eval_methods", help="Every method in the registry can be scored."
            )
            st.caption(
                "Settings for 64×32 images: "
                + "; ".join(f"{n} {', '.join(f'{k}={v}' for k, v in p.items())}" for n, p in BENCHMARK_PARAMS.items())
                + ". Every other method runs at its defaults."
            )
        if not (models and methods):
            return None
        return Request(tuple(models), tuple(methods), int(images), int(seed), self.device)

    def steps(self, request: Request) -> list[jobs.Step]:
        out = []
        for model_id, first, n in parts(request):
            explain_s = costs.explain_seconds(model_id, request.device, request.panel)
            estimate = None if explain_s is None else n * explain_s + costs.forward_seconds(model_id, request.device, n)
            key = ("leakage", model_id, request.device, request.panel, request.seed, first, n)
            run = functools.partial(leakage_part, request, model_id, first, n)
            out.append(step(f"{model_id}, images {first + 1}–{first + n}", key, run, estimate))
        return out

    def combine(self, request: Request, parts: list[LeakageResult]) -> tuple[LeakageResult, ...]:
        return combine(request, parts)

    def table(self, request: Request, results) -> pd.DataFrame:
        return table(results)

    def view(self, request: Request, results) -> None:
        accuracy = ", ".join(f"`{r.model_id}` {100 * r.accuracy:.0f} %" for r in results)
        st.subheader("Leakage into the null block")
        st.caption(
            f"{results[0].images} test images per model (accuracy on them: {accuracy}); the map of the true class. "
            "**Null top-k %**: of the map's k % strongest pixels, the share on the null block (0 = no leak, 50 = "
            "as if the map could not tell the blocks apart). **Signal mass**: share of the positive attribution "
            "on the digit. BlockMNIST's finding: a standard model's input gradients leak, a robust model's do not."
        )
        chart(results)
        self.preview(request, results)
        index = int(st.session_state.get("eval_example", 0))
        bundle = {
            "label": "Run bundle (zip, with a report)",
            "data": lambda: leakage_bundle(request, results, index),
            "file_name": "blockdigits_leakage_bundle.zip",
            "mime": "application/zip",
            "help": "The table, the example image's maps of every model (raw, NPZ) and an offline HTML report.",
        }
        downloads(self.files(request, results), key=self.key, extra=[bundle])
        example_view(request)


def chart(results: tuple[LeakageResult, ...]) -> None:
    k = st.select_slider("k (top-k % pixels)", [f"{k:g}" for k in TOPK], value="5", key="eval_k")
    fig = go.Figure()
    for r in results:
        rows = r.rows()
        fig.add_bar(
            name=r.model_id,
            x=[row["label"] for row in rows],
            y=[100 * row["null_topk"][k] for row in rows],
            error_y={"type": "data", "array": [100 * row["null_topk_sd"][k] for row in rows], "thickness": 1},
        )
    fig.add_hline(y=50, line_dash="dash", line_color="grey", annotation_text="chance")
    fig.update_layout(
        barmode="group",
        yaxis_title=f"null share of top {k} % pixels (%)",
        yaxis_range=[0, 100],
        height=380,
        margin={"t": 20, "b": 10},
        legend={"orientation": "h", "y": 1.08},
    )
    st.plotly_chart(fig, width="stretch", config={"displayModeBar": False}, key="eval_chart")


def leakage_bundle(request: Request, results: tuple[LeakageResult, ...], index: int) -> bytes:
    """A run bundle of the leakage run: test image ``index`` and every model's maps of it, the table as
    ``metrics/leakage.csv``, and an ``evaluation`` section in the params (the request and each run's meta)."""
    data = blockdigits("test", seed=0)
    entries = []
    for model_id in request.models:
        for m in example_maps(model_id, request.device, request.methods, index, request.seed):
            entries.append(MapEntry(f"{model_id}: {label(m.method)}", "evaluation", m.values, m.meta(versions=False)))
    rows = [flat for r in results for flat in r.flat_rows()]
    run = RunRecord(
        image=data.rgb(index),
        image_name=f"blockdigits test #{index} (digit {data.labels[index]})",
        maps=tuple(entries),
        params={"evaluation": {"benchmark": "blockdigits-leakage", "runs": [r.meta(versions=False) for r in results]}},
        models={f"classifier {i + 1}": m for i, m in enumerate(request.models)},
        seeds={"saliency": request.seed, "blockdigits": 0},
        tables={"leakage": tuple(rows)},
    )
    return bundle_bytes(run)


@st.cache_data(max_entries=32, show_spinner="Computing the maps…")
def example_maps(model_id: str, device: str, methods: tuple[str, ...], index: int, seed: int) -> list:
    """The SaliencyMaps of test image ``index`` (its true class) for each method (cached)."""
    data = blockdigits("test", seed=0)
    bundle = loaders.classifier(model_id, device)
    maps = explain(
        bundle,
        data.rgb(index),
        [(n, BENCHMARK_PARAMS.get(n, {})) for n in methods],
        target=int(data.labels[index]),
        seed=seed,
    )
    return list(maps)


def example_view(request: Request) -> None:
    """The maps of one test image, per model: where each method puts its evidence."""
    st.subheader("One image, every map")
    data = blockdigits("test", seed=0)
    index = st.number_input("Test image", 0, len(data) - 1, 0, key="eval_example", help="Index into the test set.")
    where = "top" if data.signal_top[index] else "bottom"
    st.caption(f"Digit {data.labels[index]}, on the {where}; red = evidence for the digit, blue = against.")
    image = resize_image(data.rgb(index), (128, 64))
    for model_id in request.models:
        maps = example_maps(model_id, request.device, request.methods, int(index), request.seed)
        st.markdown(f"`{model_id}`")
        cols = st.columns(len(maps) + 1)
        cols[0].image(image, caption="image", width=96)
        for col, name, m in zip(cols[1:], request.methods, maps):
            lo, hi, _ = colour_range(m.values, "signed", 99.5)
            picture = with_colour_bar(overlay(image, m.values, lo, hi, "RdBu_r", alpha=0.75), lo, hi, "RdBu_r")
            col.image(picture, caption=REGISTRY[name].info.label, width=96)
