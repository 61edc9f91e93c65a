"""The Evaluate page: which saliency map is right, tested where the evidence is known.

BlockDigits (:mod:`glimpse.evaluation.blockdigits`): every image holds a digit (the signal) and a fixed patch
that carries nothing about the label (the null block). A faithful map puts its evidence on the digit; the
leakage benchmark (:mod:`glimpse.evaluation.leakage`) measures, per method and model, how much does not.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components import jobs, loaders, session_results
from components.views import ONE_MATCH_ON_ENTER
from glimpse.display import colour_range, overlay, resize_image
from glimpse.evaluation.blockdigits import blockdigits
from glimpse.evaluation.diffroar import LEVELS, DiffRoarResult, blockdigits_diffroar
from glimpse.evaluation.inversion import LEVELS as INVERSION_LEVELS
from glimpse.evaluation.inversion import PAPER, InversionResult, feature_inversion
from glimpse.evaluation.leakage import BENCHMARK_PARAMS, TOPK, LeakageResult, leakage_benchmark
from glimpse.evaluation.npz import evaluation_npz_bytes
from glimpse.export import MapEntry, RunRecord, bundle_bytes
from glimpse.saliency import REGISTRY, explain
from glimpse.saliency.batching import cache_dir
from models.registry import ModelLoadError

CITATION = 'Shah, Jain & Netrapalli, "Do Input Gradients Highlight Discriminative Features?", NeurIPS 2021'
MODELS = ("blockdigits-standard", "blockdigits-robust")
#: methods selected at first: one per family, quick on 64×32 images
DEFAULT_METHODS = ("gradient", "input_x_gradient", "integrated_gradients", "smoothgrad", "gradcam", "occlusion")
RESULT_KEY = "evaluate_blockdigits"
TEST_IMAGES = 359


@dataclass(frozen=True)
class Request:
    models: tuple[str, ...]
    methods: tuple[str, ...]
    images: int
    seed: int
    device: str


def method_picker(default, *, key: str, help: str | None = None, where=st) -> list[str]:
    """The registry's methods, by label and family, ``default`` selected; typing then Enter picks one match."""
    return where.multiselect(
        "Methods",
        list(REGISTRY),
        default=list(default),
        format_func=lambda n: f"{REGISTRY[n].info.label} ({REGISTRY[n].info.family})",
        key=key,
        help=help,
        **ONE_MATCH_ON_ENTER,
    )


@contextmanager
def progress_bar(text: str, prefix: str = "") -> Iterator[Callable[[float, str], None]]:
    """A progress bar for the block; yields the ``progress(fraction, message)`` callback the benchmarks take.
    Create it inside a cached service, so that a cache hit replays it finished, not another run's bar."""
    bar = st.progress(0.0, text=text)
    try:
        yield lambda fraction, message: bar.progress(min(1.0, fraction), text=f"{prefix}{message}")
    finally:
        bar.empty()


def store(key: str, failure: str, work: Callable[[], Any], cancel_message: str = "Cancelled.") -> None:
    """Run ``work()`` as one job (its place in the model's line, Cancel: components/jobs.py) and keep its result
    under ``key``; a user error (bad image or mask, model that fails to load) is shown as ``failure: why`` and
    the previous result goes, so it is not read as the answer to this run."""
    try:
        with jobs.heavy(key.removeprefix("evaluate_").replace("_", " "), cancel_message=cancel_message):
            session_results.put(key, work())
    except (ValueError, ModelLoadError) as err:  # ImageLoadError is a ValueError
        session_results.pop(key)
        st.error(f"{failure}: {err}")


def images_or_samples(uploads) -> dict[str, np.ndarray]:
    """Uploaded images by file name, or the sample photographs when nothing is uploaded."""
    from glimpse.images import load_image, sample_images

    return {f.name: load_image(f.getvalue()) for f in uploads} if uploads else sample_images()


def controls(device: str) -> Request | None:
    """Models, methods and image count; a Request when Run is pressed."""
    c1, c2 = st.columns([1, 2])
    with c1:
        models = st.multiselect("Models", MODELS, default=list(MODELS), key="eval_models")
        images = st.slider(
            "Test images", 10, TEST_IMAGES, 50, step=10, key="eval_images", help="Scored per model; more is slower."
        )
        seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="eval_seed", help="Seeds the methods' random draws.")
    with c2:
        methods = method_picker(DEFAULT_METHODS, key="eval_methods", help="Every method in the registry can be scored.")
        st.caption(
            "Settings for 64×32 images: "
            + "; ".join(f"{n} {', '.join(f'{k}={v}' for k, v in p.items())}" for n, p in BENCHMARK_PARAMS.items())
            + ". Every other method runs at its defaults."
        )
    if not st.button("Run", type="primary", icon=":material/play_arrow:", disabled=not (models and methods)):
        return None
    return Request(tuple(models), tuple(methods), int(images), int(seed), device)


@st.cache_data(max_entries=16, show_spinner=False)
def leakage(model_id: str, device: str, methods: tuple[str, ...], images: int, seed: int) -> LeakageResult:
    """The leakage of ``methods`` on ``model_id`` (cached across sessions: the same request is one run)."""
    bundle = loaders.classifier(model_id, device)
    with progress_bar(f"{model_id}…", prefix=f"{model_id}: ") as progress:
        return leakage_benchmark(
            bundle,
            blockdigits("test", seed=0),
            [(n, BENCHMARK_PARAMS.get(n, {})) for n in methods],
            images=images,
            seed=seed,
            progress=progress,
        )


def run(request: Request) -> None:
    """Score every model; store the results for this session (an error is shown and nothing is kept)."""
    store(
        RESULT_KEY,
        "Could not run the benchmark",
        lambda: (
            request,
            tuple(leakage(m, request.device, request.methods, request.images, request.seed) for m in request.models),
        ),
    )


def stored() -> tuple[Request, tuple[LeakageResult, ...]] | None:
    return session_results.get(RESULT_KEY)


def table(results: tuple[LeakageResult, ...]) -> pd.DataFrame:
    """One row per model and method: accuracy, signal mass and the null share of the top-k % pixels, in %."""
    rows = []
    for r in results:
        for row in r.rows():
            out = {"model": r.model_id, "method": row["label"], "signal mass %": 100 * row["signal_mass"]}
            out.update({f"null top {k} %": 100 * v for k, v in row["null_topk"].items()})
            rows.append(out)
    return pd.DataFrame(rows)


def results_view() -> None:
    request, results = stored()
    accuracy = ", ".join(f"`{r.model_id}` {100 * r.accuracy:.0f} %" for r in results)
    st.subheader("Leakage into the null block")
    st.caption(
        f"{results[0].images} test images per model (accuracy on them: {accuracy}); the map of the true class. "
        "**Null top-k %**: of the map's k % strongest pixels, the share on the null block (0 = no leak, 50 = as "
        "if the map could not tell the blocks apart). **Signal mass**: share of the positive attribution on "
        "the digit. BlockMNIST's finding: a standard model's input gradients leak, a robust model's do not."
    )
    chart(results)
    frame = table(results)
    st.dataframe(frame.style.format(precision=1), hide_index=True, width="stretch")
    downloads(frame, results)
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
            label = REGISTRY[m.method].info.label
            entries.append(MapEntry(f"{model_id}: {label}", "evaluation", m.values, m.meta(versions=False)))
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


def downloads(frame: pd.DataFrame, results: tuple[LeakageResult, ...]) -> None:
    c1, c2, c3, c4 = st.columns(4)
    request = stored()[0]
    index = int(st.session_state.get("eval_example", 0))
    c3.download_button(
        "NPZ of every image's scores",
        data=lambda: evaluation_npz_bytes(results),
        file_name="blockdigits_leakage.npz",
        mime="application/octet-stream",
        on_click="ignore",
        help="Per model and method: signal_mass (images,) and null_topk (images, k); meta holds how it was made.",
    )
    c4.download_button(
        "Run bundle (zip, with a report)",
        data=lambda: leakage_bundle(request, results, index),
        file_name="blockdigits_leakage_bundle.zip",
        mime="application/zip",
        on_click="ignore",
        help="The table, the example image's maps of every model (raw, NPZ) and an offline HTML report.",
    )
    c1.download_button("CSV of the table", frame.to_csv(index=False), "blockdigits_leakage.csv", "text/csv")
    doc = {
        "rows": [{"model": r.model_id, **row} for r in results for row in r.rows()],
        "runs": [r.meta() for r in results],
    }
    buf = io.StringIO()
    json.dump(doc, buf, indent=2)
    c2.download_button("JSON with how it was made", buf.getvalue(), "blockdigits_leakage.json", "application/json")


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
            picture = overlay(image, m.values, lo, hi, "RdBu_r", alpha=0.75)
            col.image(picture, caption=REGISTRY[name].info.label, width=96)


# --------------------------------------------------------------------------------------------------
# DiffROAR
# --------------------------------------------------------------------------------------------------
ROAR_KEY = "evaluate_diffroar"


@dataclass(frozen=True)
class RoarRequest:
    models: tuple[str, ...]
    methods: tuple[str, ...]
    levels: tuple[float, ...]
    seeds: int
    epochs: int
    device: str


def diffroar_controls(device: str) -> RoarRequest | None:
    """Models, methods, levels and retrainings; a RoarRequest when Run is pressed."""
    c1, c2 = st.columns([1, 2])
    with c1:
        models = st.multiselect("Models", MODELS, default=list(MODELS), key="roar_models")
        seeds = st.slider("Retrainings per level and side", 1, 3, 2, key="roar_seeds")
        epochs = st.slider("Epochs per retraining", 2, 20, 10, key="roar_epochs")
    with c2:
        methods = method_picker(["gradient"], key="roar_methods")
        levels = st.multiselect(
            "Pixels kept (k)",
            list(LEVELS),
            default=list(LEVELS),
            format_func=lambda k: f"{100 * k:g} %",
            key="roar_levels",
        )
    cells = len(models) * len(methods) * len(levels) * 2 * seeds
    st.caption(
        f"**{cells} retrainings** of a BlockDigits CNN from scratch ({epochs} epochs on 1,438 masked images each; "
        "about 10 s each on two CPU cores at 10 epochs). Finished retrainings are kept in the user cache, so a "
        "stopped run resumes where it stopped."
    )
    if not st.button("Run DiffROAR", type="primary", icon=":material/play_arrow:", disabled=cells == 0):
        return None
    return RoarRequest(tuple(models), tuple(methods), tuple(sorted(levels)), int(seeds), int(epochs), device)


@st.cache_data(max_entries=32, show_spinner=False)
def diffroar_curve(model_id: str, device: str, method: str, levels: tuple, seeds: int, epochs: int) -> DiffRoarResult:
    """One DiffROAR curve (cached across sessions; its retrainings also in the user cache)."""
    from models.blockdigits import MEAN, STD, BlockDigitsCNN

    with progress_bar(f"{model_id}, {method}…", prefix=f"{model_id}, {method}: ") as progress:
        return blockdigits_diffroar(
            loaders.classifier(model_id, device),
            method,
            BENCHMARK_PARAMS.get(method, {}),
            BlockDigitsCNN,
            lambda x: (x - MEAN) / STD,
            levels=levels,
            seeds=range(seeds),
            epochs=epochs,
            cache_dir=cache_dir() / "diffroar",
            progress=progress,
        )


def diffroar_run(request: RoarRequest) -> None:
    results = []
    with jobs.heavy(
        "DiffROAR", cancel_message="DiffROAR stopped: the finished retrainings are kept, Run resumes from them."
    ):
        for model_id in request.models:
            for method in request.methods:
                results.append(
                    diffroar_curve(model_id, request.device, method, request.levels, request.seeds, request.epochs)
                )
        session_results.put(ROAR_KEY, tuple(results))


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


def diffroar_view() -> None:
    results = session_results.get(ROAR_KEY)
    if not results:
        st.info("Pick models, methods and levels and press **Run DiffROAR**.")
        return
    curve_chart(results, key="roar_chart", label=lambda r: f"{r.model_id}: {REGISTRY[r.method].info.label}")
    st.caption(
        "Above 0: the map ranks the pixels that decide the class first. Below 0: it ranks them last (the paper's "
        '"feature inversion"). Bars: the spread over retrainings.'
    )
    frame = pd.DataFrame([row for r in results for row in r.rows()])
    st.dataframe(frame.style.format(precision=3), hide_index=True, width="stretch")
    doc = json.dumps({"rows": frame.to_dict("records"), "runs": [r.meta() for r in results]}, indent=2)
    c1, c2, c3 = st.columns(3)
    c1.download_button("CSV of the curves", frame.to_csv(index=False), "diffroar.csv", "text/csv")
    c2.download_button("JSON with how they were made", doc, "diffroar.json", "application/json")
    c3.download_button(
        "NPZ of every retraining",
        data=lambda: evaluation_npz_bytes(results),
        file_name="diffroar.npz",
        mime="application/octet-stream",
        on_click="ignore",
    )


# --------------------------------------------------------------------------------------------------
# feature inversion on the paper's synthetic data
# --------------------------------------------------------------------------------------------------
INVERSION_KEY = "evaluate_inversion"


@st.cache_data(max_entries=8, show_spinner=False)
def inversion_result(width: int, epochs: int, eps: float, levels: tuple, seeds: int) -> InversionResult:
    """Both synthetic networks, their gradients' scores and DiffROAR (cached across sessions)."""
    with progress_bar("Training the synthetic networks…") as progress:
        return feature_inversion(
            width=width,
            epochs=epochs,
            eps=eps,
            levels=levels,
            seeds=range(seeds),
            cache_dir=cache_dir() / "diffroar",
            progress=progress,
        )


def inversion_section() -> None:
    """The paper's own check, where its sign shows: controls, run, table and curves."""
    st.subheader("The paper's own check: feature inversion on synthetic data")
    st.caption(
        "Ten coordinates, one of them ±1 (its sign is the label), the others 0. A standard one-hidden-layer "
        "network's largest |gradient| coordinate is almost never that signal, and its smallest often is; an "
        "adversarially trained network's largest is. DiffROAR retrains on the top or bottom coordinates of each "
        "point's gradient: negative for the standard network, positive for the robust one. "
        "Scaled to a CPU (the paper: width 25,000, 500 epochs, ε = 0.45): about a minute on two cores."
    )
    c1, c2, c3, c4 = st.columns(4)
    width = c1.select_slider("Hidden units", [250, 500, 1000, 2000], 500, key="inv_width")
    epochs = c2.select_slider("Epochs", [40, 80, 160], 40, key="inv_epochs")
    eps = c3.select_slider("Robust ε (ℓ∞)", [0.2, 0.3, 0.45], 0.3, key="inv_eps")
    seeds = c4.slider("Retrainings per level and side", 1, 3, 2, key="inv_seeds")
    levels = st.multiselect(
        "Coordinates kept (k, of 10)",
        list(INVERSION_LEVELS),
        default=list(INVERSION_LEVELS),
        format_func=lambda k: f"{round(10 * k)}",
        key="inv_levels",
    )
    if st.button("Run the synthetic check", icon=":material/play_arrow:", key="inv_run", disabled=not levels):
        levels = tuple(sorted(levels))
        store(
            INVERSION_KEY,
            "The synthetic check failed",
            lambda: inversion_result(width, epochs, eps, levels, seeds),
            cancel_message="Stopped: the finished retrainings are kept, Run resumes from them.",
        )
    result = session_results.get(INVERSION_KEY)
    if result is None:
        return
    frame = pd.DataFrame(
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
    st.dataframe(frame.style.format(precision=3), hide_index=True, width="stretch")
    curve_chart(result.curves(), key="inv_chart", label=lambda r: r.model_id.replace("synthetic-", "") + " network")
    doc = json.dumps({"rows": result.rows(), "meta": result.meta(), "runs": [c.meta() for c in result.curves()]})
    st.download_button("JSON of the check", doc, "inversion.json", "application/json", key="inv_json")


# --------------------------------------------------------------------------------------------------
# the user's masks
# --------------------------------------------------------------------------------------------------
MASKS_KEY = "evaluate_masks"


def masks_tab(model_id: str, device: str) -> None:
    """Upload images and their masks (paired in file-name order), pick methods, score."""
    st.caption(
        "Upload images and one mask per image (the same size; white inside the region that should matter, black "
        "outside), as files or zips. Images and masks pair in the order of their names (inside a zip: their paths). "
        "Each method's map of the top-1 class of "
        f"the sidebar's classifier (`{model_id}`) is scored at the image's size."
    )
    c1, c2 = st.columns(2)
    images = c1.file_uploader("Images (files or a zip)", accept_multiple_files=True, key="mask_images")
    masks = c2.file_uploader("Masks (files or a zip)", accept_multiple_files=True, key="mask_masks")
    methods = method_picker(["gradient", "gradcam", "smoothgrad"], key="mask_methods")
    k = st.slider("k for the top-k % IoU", 1, 50, 10, key="mask_k")
    if st.button("Score against the masks", type="primary", disabled=not (images and masks and methods)):
        _score_masks(model_id, device, images, masks, methods, float(k))
    result = session_results.get(MASKS_KEY)
    if result is not None:
        masks_view(result)


def _score_masks(model_id: str, device: str, images, masks, methods, k: float) -> None:
    from components.complexity_ui import expand_uploads
    from glimpse.evaluation.masks import load_mask, mask_scores
    from glimpse.images import load_image

    (images, skipped_images), (masks, skipped_masks) = expand_uploads(images), expand_uploads(masks)
    for message in (*skipped_images, *skipped_masks):
        st.warning(f"Skipped {message}")
    images, masks = sorted(images, key=lambda f: f.name), sorted(masks, key=lambda f: f.name)
    if len(images) != len(masks):
        st.error(f"{len(images)} images but {len(masks)} masks: upload one mask per image (they pair by file name).")
        return

    def work():
        pixels = [load_image(f.data) for f in images]
        binary = []
        for f, image in zip(masks, pixels):
            try:
                binary.append(load_mask(f.data, image.shape[:2]))
            except ValueError as err:
                raise ValueError(
                    f"{f.name} (for {images[len(binary)].name}): {str(err).removeprefix('mask: mask ')}"
                ) from err
        with progress_bar("Scoring…") as progress:
            return mask_scores(
                loaders.classifier(model_id, device),
                pixels,
                binary,
                list(methods),
                names=[f.name for f in images],
                k=k,
                progress=progress,
            )

    store(MASKS_KEY, "Cannot score", work)


def masks_view(result, key: str = "mask") -> None:
    from glimpse.evaluation.masks import METRICS

    rows = result.rows()
    frame = pd.DataFrame([{"method": REGISTRY[r["method"]].info.label, **{m: r[m] for m in METRICS}} for r in rows])
    st.markdown(f"**{len(result.names)} image–mask pair{'s' * (len(result.names) != 1)}** on `{result.model_id}`")
    st.dataframe(frame.style.format(precision=3), hide_index=True, width="stretch")
    fig = go.Figure()
    for metric in METRICS[1:]:
        fig.add_bar(
            name=metric,
            x=frame["method"],
            y=frame[metric],
            error_y={"type": "data", "array": [r[f"{metric}_sd"] for r in rows]},
        )
    fig.update_layout(barmode="group", yaxis_range=[0, 1], height=340, margin={"t": 20}, legend={"orientation": "h"})
    st.plotly_chart(fig, width="stretch", config={"displayModeBar": False}, key=f"{key}_chart")
    doc = json.dumps({"rows": rows, "run": result.meta()}, indent=2)
    st.download_button(
        "JSON of the scores and how they were made", doc, f"{key}_scores.json", "application/json", key=f"{key}_json"
    )


# --------------------------------------------------------------------------------------------------
# the shapes classifier against exact object masks
# --------------------------------------------------------------------------------------------------
SHAPES_KEY = "evaluate_shapes"


@st.cache_data(max_entries=16, show_spinner=False)
def shapes_scores(device: str, methods: tuple[str, ...], scenes: int, seed: int):
    """The shapes classifier's maps against exact object masks (cached across sessions)."""
    from models.shapes_classifier import MODEL_ID, mask_benchmark

    with progress_bar("Scenes…") as progress:
        return mask_benchmark(
            loaders.classifier(MODEL_ID, device), list(methods), scenes=scenes, seed=seed, progress=progress
        )


def shapes_tab(device: str) -> None:
    """Fresh shapes scenes; each object's class explained and scored against its own mask."""
    st.caption(
        "The embedded `shapes-classifier` says which of 12 coloured shapes a 32×32 scene holds (the scenes the "
        "embedded text-to-image model learnt from). Every scene comes with exact object masks: each object's "
        "class is explained and its map scored against that object's mask."
    )
    c1, c2 = st.columns([2, 1])
    methods = method_picker(DEFAULT_METHODS, key="shape_methods", where=c1)
    scenes = c2.slider("Scenes", 5, 100, 20, step=5, key="shape_scenes", help="One or two objects each.")
    if st.button("Score the shapes classifier", type="primary", disabled=not methods):
        store(SHAPES_KEY, "Cannot score", lambda: shapes_scores(device, tuple(methods), int(scenes), 0))
    result = session_results.get(SHAPES_KEY)
    if result is not None:
        masks_view(result, key="shape")


# --------------------------------------------------------------------------------------------------
# class sensitivity over a set of images
# --------------------------------------------------------------------------------------------------
SENSITIVITY_KEY = "evaluate_class_sensitivity"


def sensitivity_tab(model_id: str, device: str) -> None:
    """Class sensitivity (Rebuffi et al. 2020) of each method over uploaded images or the samples."""
    st.caption(
        "Does a method's map change with the class it explains? Per image, the Spearman correlation between "
        "its map of the most likely and of the least likely class of the sidebar's classifier "
        f"(`{model_id}`); the mean over the images. 1 = the same map for any class; lower is better."
    )
    uploads = st.file_uploader("Images (none: the sample photographs)", accept_multiple_files=True, key="sens_images")
    methods = method_picker(["gradient", "guided_backprop", "gradcam", "smoothgrad"], key="sens_methods")
    if st.button("Measure class sensitivity", type="primary", disabled=not methods):
        _measure_sensitivity(model_id, device, uploads, methods)
    result = session_results.get(SENSITIVITY_KEY)
    if result is not None:
        rows = result.rows()
        frame = pd.DataFrame(
            [
                {
                    "method": REGISTRY[r["method"]].info.label,
                    "class sensitivity (ρ)": r["class_sensitivity"],
                    "sd": r["class_sensitivity_sd"],
                    "images": r["images"],
                }
                for r in rows
            ]
        )
        st.markdown(f"**{len(result.image_names)} images** on `{result.model_id}`")
        st.dataframe(frame.style.format(precision=3), hide_index=True, width="stretch")
        doc = json.dumps({"rows": rows, "run": result.meta()}, indent=2)
        st.download_button("JSON of the table and how it was made", doc, "class_sensitivity.json", "application/json")


def _measure_sensitivity(model_id: str, device: str, uploads, methods) -> None:
    from glimpse.evaluation.sensitivity import class_sensitivity

    def work():
        images = images_or_samples(uploads)
        with progress_bar("Maps of the most and the least likely class…") as progress:
            return class_sensitivity(
                loaders.classifier(model_id, device),
                list(images.values()),
                list(methods),
                names=list(images),
                progress=progress,
            )

    store(SENSITIVITY_KEY, "Cannot measure", work)


# --------------------------------------------------------------------------------------------------
# PGI / PGU over a set of images
# --------------------------------------------------------------------------------------------------
PGI_KEY = "evaluate_pgi"


def pgi_tab(model_id: str, device: str) -> None:
    """PGI and PGU (Han et al. 2022) of each method on uploaded images or the samples."""
    st.caption(
        "Perturb the superpixels a map ranks highest (PGI: the prediction should move, higher is better) or all "
        f"the others (PGU: it should not, lower is better), on the sidebar's classifier (`{model_id}`). No method "
        "wins every neighbourhood, so each k is shown."
    )
    uploads = st.file_uploader("Images (none: the sample photographs)", accept_multiple_files=True, key="pgi_images")
    methods = method_picker(["gradient", "gradcam", "occlusion"], key="pgi_methods")
    c1, c2, c3 = st.columns(3)
    ks = c1.multiselect("k (share of superpixels)", [0.1, 0.25, 0.5], default=[0.25], key="pgi_ks")
    perturbation = c2.radio("Perturbation", ["gaussian", "baseline"], horizontal=True, key="pgi_perturbation")
    draws = c3.slider("Noise draws", 5, 100, 20, step=5, key="pgi_draws", disabled=perturbation == "baseline")
    if st.button("Measure PGI / PGU", type="primary", disabled=not (methods and ks)):
        _measure_pgi(model_id, device, uploads, methods, tuple(sorted(ks)), perturbation, int(draws))
    result = session_results.get(PGI_KEY)
    if result is not None:
        rows = result.rows()
        frame = pd.DataFrame(
            [
                {"method": REGISTRY[r["method"]].info.label, "k": r["k"], "PGI ↑": r["pgi"], "PGU ↓": r["pgu"]}
                for r in rows
            ]
        )
        st.markdown(f"**{len(result.names)} images** on `{result.model_id}` · {result.perturbation} perturbation")
        st.dataframe(frame.style.format(precision=4), hide_index=True, width="stretch")
        doc = json.dumps({"rows": rows, "run": result.meta()}, indent=2)
        st.download_button("JSON of the table and how it was made", doc, "pgi_pgu.json", "application/json")


def _measure_pgi(model_id: str, device: str, uploads, methods, ks, perturbation: str, draws: int) -> None:
    from glimpse.evaluation.pgi import pgi_pgu

    def work():
        images = images_or_samples(uploads)
        with progress_bar("Maps and perturbations…") as progress:
            return pgi_pgu(
                loaders.classifier(model_id, device),
                list(images.values()),
                list(methods),
                names=list(images),
                ks=ks,
                perturbation=perturbation,
                draws=draws,
                progress=progress,
            )

    store(PGI_KEY, "Cannot measure", work)


# ------------------------------------------------------------------------------------------ data set tab
def dataset_tab(model_id: str, device: str) -> None:
    """Deletion and insertion AUCs of each method's map for every image of a data set (glimpse.batch)."""
    from components.batch_ui import dataset_runner
    from glimpse.batch import EvaluateTask
    from glimpse.saliency import list_methods
    from models.registry import load_classifier

    st.markdown(
        f"Faithfulness over a whole data set: for every image, each method's map on `{model_id}` (the sidebar's "
        "classifier) and the deletion and insertion AUCs of the target's probability (Petsiuk et al. 2018), one "
        "Parquet row per image."
    )
    names = [m.name for m in list_methods() if not m.slow]
    methods = st.multiselect("Methods", names, default=["gradient", "gradcam"], key="eval_ds_methods")
    steps = st.slider("Deletion/insertion steps", 5, 50, 20, key="eval_ds_steps")
    if not methods:
        st.info("Pick at least one method.")
        return

    def make(out: str, threads: int | None) -> EvaluateTask:
        return EvaluateTask(
            steps=steps, model_id=model_id, methods=tuple(methods), out=out, loader=load_classifier, device=device,
            threads=threads,
        )  # fmt: skip

    dataset_runner("evaluate", make, key="eval_dataset")
