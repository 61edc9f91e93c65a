"""Do maps hold up on complex images? The faithfulness-against-complexity study (``python -m glimpse study``) as a
job: per image (:class:`glimpse.batch.study.StudyTask`, called on each step's images in this process) its visual
complexity and each method's deletion/insertion AUC, agreement and, against exact masks, pointing game and relevance
mass; then Spearman's ρ of each metric with the complexity, with a bootstrap interval, and the metrics per complexity
quantile (:mod:`glimpse.evaluation.study`, its figures drawn here)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import streamlit as st

from components import costs, jobs, loaders
from components.evaluate.base import BenchmarkTab, Texts, digest, label, method_picker, step
from components.uploads import Upload, expand_uploads
from glimpse.evaluation.study import (
    FEATURES,
    METRICS,
    PHOTO_GROUPS,
    StudySummary,
    binned_figure,
    scatter_figure,
    summarise,
    summary_record,
    with_groups,
)
from glimpse.saliency import REGISTRY

STUDY_KEY = "evaluate_study"
SOURCES = {
    "clutter": "built-in clutter scenes (exact masks)",
    "photos": "sample photographs",
    "uploads": "your images",
}
DEFAULT_METHODS = ("gradcam", "gradient", "input_x_gradient")  # the command's
#: images the summary needs before it is drawn (fewer give no interval worth reading)
SUMMARY_FROM = 4
RESAMPLES = 1000


@dataclass(frozen=True)
class StudyRequest:
    model_id: str  # the shapes classifier for the clutter scenes, else the sidebar's
    device: str
    source: str  # a key of SOURCES
    uploads: tuple[Upload, ...]
    methods: tuple[str, ...]
    per_level: int  # clutter scenes per level
    crops: int  # crops per sample photograph
    steps: int  # deletion/insertion steps
    seed: int = 0


@dataclass(frozen=True, eq=False)
class StudyRun:
    """The rows so far (one per image, :class:`StudyTask`'s columns) and, from :data:`SUMMARY_FROM` images
    without an error, their summary."""

    frame: pd.DataFrame
    summary: StudySummary | None


@dataclass(frozen=True)
class Inputs:
    """The study's images by name, in the order the steps take them, with masks and targets where known."""

    images: dict[str, np.ndarray]
    masks: dict[str, np.ndarray] | None = None
    targets: dict[str, int] | None = None
    per_step: int = 1


@st.cache_data(max_entries=64, show_spinner=False)
def _decoded(data: bytes, name: str) -> np.ndarray:
    from glimpse.images import load_image

    return load_image(data, name=name)


def inputs(request: StudyRequest) -> Inputs:
    """The clutter scenes one per level per step (so every partial result spans the levels), the photographs
    and their crops, or the uploads (decoded; an unreadable one raises ValueError naming it)."""
    if request.source == "clutter":
        from glimpse.batch.study import clutter_scenes

        scenes = jobs.remembered(("study-clutter", request.per_level, request.seed),
                                 lambda: clutter_scenes(per_level=request.per_level, seed=request.seed))  # fmt: skip
        names = sorted(scenes, key=lambda n: (n.split("-")[1], n))  # L1-001, L2-001, …, L6-001, L1-002, …
        return Inputs({n: scenes[n].image for n in names}, {n: scenes[n].mask for n in names},
                      {n: int(scenes[n].target) for n in names}, per_step=len({n[:2] for n in names}))  # fmt: skip
    if request.source == "photos":
        from glimpse.batch.study import photo_set

        return Inputs(jobs.remembered(("study-photos", request.crops, request.seed),
                                      lambda: photo_set(crops_per_image=request.crops, seed=request.seed)))  # fmt: skip
    return Inputs({f.name: _decoded(f.data, f.name) for f in request.uploads})


def study_rows(request: StudyRequest, part: Inputs) -> pa.Table:
    """The study task's rows of ``part``'s images (an image it cannot score is a row with its error)."""
    from glimpse.batch.study import StudyTask

    task = StudyTask(model_id=request.model_id, methods=request.methods, out="", loader=loaders.classifier,
                     device=request.device, seed=request.seed, steps=request.steps, masks=part.masks,
                     targets=part.targets)  # fmt: skip
    names = list(part.images)
    return task.table(names, list(part.images.values()), [None] * len(names))


def summary_table(summary: StudySummary) -> pd.DataFrame:
    frame = pd.DataFrame(summary.rows())
    frame["method"] = [m if m == "model" else label(m) for m in frame["method"]]
    return frame.rename(columns={"rho": "ρ", "ci_low": "95 % low", "ci_high": "95 % high"})


def about(request: StudyRequest, run: StudyRun) -> dict:
    """The summary JSON, as ``glimpse study --out`` writes it."""
    return summary_record(run.summary, run.frame, source=request.source, model_id=request.model_id,
                          engine="in-process")  # fmt: skip


def plots(run: StudyRun, feature: str, metric: str) -> None:
    """Each method's metric against the feature (a scatter per method) beside its mean per quantile bin."""
    if metric not in {c.metric for c in run.summary.correlations}:
        return
    left, right = st.columns(2)
    left.pyplot(scatter_figure(run.frame, run.summary, feature=feature, metrics=[metric]))
    right.pyplot(binned_figure(run.summary, feature=feature, metrics=[metric]))


def metrics_of(run: StudyRun) -> list[str]:
    present = {c.metric for c in run.summary.correlations if c.method != "model"}
    return [m for m in METRICS if m in present]


@st.fragment
def chosen_plots(run: StudyRun) -> None:
    """The plots of the picked feature and metric (a display choice: only this part is drawn again)."""
    c1, c2 = st.columns(2)
    feature = c1.selectbox("Complexity", run.summary.features, key="study_feature")
    options = metrics_of(run)
    default = options.index("pointing_game") if "pointing_game" in options else 0
    metric = c2.selectbox("Metric", options, index=default, key="study_metric")
    plots(run, feature, metric)


class StudyTab(BenchmarkTab):
    texts = Texts(STUDY_KEY, "Run the study", "the complexity study", "batch", "Cannot run the study", "steps")
    intro = (
        "Do maps hold up on complex images? Per image: its visual complexity (MSG, MUC, edge density), each "
        "method's deletion and insertion AUC, the methods' agreement and, on the clutter scenes (1–6 objects, exact "
        "masks of the largest, which is explained), the pointing game and relevance mass; then Spearman's ρ of each "
        "metric with the complexity and its 95 % bootstrap interval. The clutter scenes run on the embedded "
        "`shapes-classifier`, photographs and uploads on the sidebar's classifier (`{model_id}`). "
        "`python -m glimpse study` runs the same over a whole data set."
    )
    empty = "Run the study to see its rows, the correlations and the plots."

    def controls(self) -> StudyRequest | None:
        from models.shapes_classifier import MODEL_ID

        source = st.radio("Images", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="study_source")
        model_id = MODEL_ID if source == "clutter" else self.model_id
        bundle = loaders.classifier(model_id, self.device)
        c1, c2, c3 = st.columns([2, 1, 1])
        defaults = [m for m in DEFAULT_METHODS if REGISTRY[m].applies(bundle) is None]
        methods = method_picker(defaults, key="study_methods", where=c1, bundle=bundle)
        per_level, crops, uploads = 3, 0, ()
        if source == "clutter":
            per_level = c2.slider("Scenes per clutter level", 1, 20, 3, key="study_per_level", help="6 levels.")
        elif source == "photos":
            crops = c2.slider("Crops per photograph", 0, 12, 1, key="study_crops", help="6 photographs.")
        steps = c3.slider("Deletion/insertion steps", 5, 50, 20, step=5, key="study_steps")
        if source == "uploads":
            files = st.file_uploader("Images (files or a zip)", accept_multiple_files=True, key="study_images")
            images, skipped = expand_uploads(files or [])
            for message in skipped:
                st.warning(f"Skipped {message}")
            if not images:
                st.info(f"Upload images (at least {SUMMARY_FROM} for a summary).")
                return None
            uploads = tuple(sorted(images, key=lambda f: f.name))
        if not methods:
            return None
        return StudyRequest(model_id, self.device, source, uploads, tuple(methods), int(per_level), int(crops),
                            int(steps))  # fmt: skip

    def plan(self, request: StudyRequest) -> jobs.Plan:
        unit = "batch" if request.source == "clutter" else "image"
        notes = () if request.source == "clutter" else ("no masks: no pointing game or relevance mass",)
        return jobs.Plan(self.texts.label, tuple(self.steps(request)), unit=unit, notes=notes)

    def steps(self, request: StudyRequest) -> list[jobs.Step]:
        found = inputs(request)
        model, device = request.model_id, request.device
        panel = costs.as_methods(request.methods)
        curves = costs.forward_seconds(model, device, 2 * (request.steps + 1) * len(request.methods))
        per_image = costs.total(costs.explain_seconds(model, device, panel), curves)
        names = list(found.images)
        out = []
        for first in range(0, len(names), found.per_step):
            chunk = names[first : first + found.per_step]
            part = Inputs({n: found.images[n] for n in chunk},
                          None if found.masks is None else {n: found.masks[n] for n in chunk},
                          None if found.targets is None else {n: found.targets[n] for n in chunk})  # fmt: skip
            key = ("study", model, device, panel, request.steps, request.seed,
                   tuple((n, digest(part.images[n]), None if part.masks is None else digest(part.masks[n]),
                          None if part.targets is None else part.targets[n]) for n in chunk))  # fmt: skip
            what = chunk[0] if len(chunk) == 1 else f"{chunk[0]} … {chunk[-1]}"
            estimate = None if per_image is None else len(chunk) * per_image
            out.append(step(what, key, lambda progress, part=part: study_rows(request, part), estimate))
        return out

    def combine(self, request: StudyRequest, parts: list[pa.Table]) -> StudyRun:
        frame = pa.concat_tables(parts).to_pandas()
        good = int(frame["error"].isna().sum())
        summary = None
        if request.source == "photos":  # a photograph and its crops are one draw of the bootstrap
            frame = with_groups(frame, PHOTO_GROUPS)
        if good >= SUMMARY_FROM:
            summary = summarise(frame, request.methods, features=FEATURES, resamples=RESAMPLES, seed=request.seed,
                                groups="group" if "group" in frame else None)  # fmt: skip
        return StudyRun(frame, summary)

    def table(self, request: StudyRequest, result: StudyRun) -> pd.DataFrame:
        return result.frame

    def heading(self, request: StudyRequest, result: StudyRun) -> str:
        errors = int(result.frame["error"].notna().sum())
        return (f"**{len(result.frame)} images** ({SOURCES[request.source]}) on `{request.model_id}`"
                + (f" · {errors} with an error" if errors else ""))  # fmt: skip

    def preview(self, request: StudyRequest, result: StudyRun, step: int | None = None) -> None:
        """The rows, then (from 4 images) the correlations; while the job runs, the first metric's plots too."""
        super().preview(request, result, step)
        if result.summary is None:
            st.caption(f"The correlations and plots appear from {SUMMARY_FROM} images without an error.")
            return
        st.markdown("**Spearman's ρ with the complexity** (95 % bootstrap interval over the images)")
        st.dataframe(summary_table(result.summary).style.format(precision=3), hide_index=True, width="stretch")
        if step is not None and (options := metrics_of(result)):
            plots(result, result.summary.features[0], options[0])

    def view(self, request: StudyRequest, result: StudyRun) -> None:
        st.markdown(self.heading(request, result))
        self.preview(request, result)
        if result.summary is not None and metrics_of(result):
            chosen_plots(result)
        buttons = [("CSV of the rows", result.frame.to_csv(index=False).encode(), "csv", "text/csv")]
        parquet = io.BytesIO()
        result.frame.to_parquet(parquet, index=False)
        buttons.append(("Parquet of the rows", parquet.getvalue(), "parquet", "application/octet-stream"))
        if result.summary is not None:
            text = json.dumps(about(request, result), indent=2) + "\n"
            buttons.append(("JSON of the summary", text.encode(), "json", "application/json"))
        for col, (text, data, ext, mime) in zip(st.columns(len(buttons)), buttons):
            name = "summary.json" if ext == "json" else f"study.{ext}"
            col.download_button(text, data, name, mime, key=f"{self.key}_{ext}", on_click="ignore")
