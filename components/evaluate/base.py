"""One benchmark tab: controls → a job (its cost first, progress, partial results, Cancel) → table → downloads.

A benchmark supplies its controls (widgets that return a frozen request), its steps (one image, a few
images, a retraining level: each a call of its library function, kept by :func:`components.jobs.remembered`
so Cancel keeps it and Run resumes from it), how its parts combine (the results' ``merge``) and its view.
:meth:`BenchmarkTab.draw` runs the rest, the same on every tab (the pytorch-grad-cam pattern: the base runs
the loop, a subclass overrides its hooks). A new benchmark is one library file and one small subclass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import streamlit as st

from components import jobs, loaders, session_results
from components.uploads import Upload
from components.views import ONE_MATCH_ON_ENTER
from glimpse.evaluation.files import EvaluationFiles
from glimpse.saliency import REGISTRY
from models.registry import ModelLoadError


@dataclass(frozen=True)
class Texts:
    """What a tab says: its session result's ``key`` (the Run button's key is ``{key}_run``), the button's label,
    the job's label (shown to the others in the model's line), what one step is called, the message of a failed
    run and what Cancel keeps ("the finished {kept} are kept")."""

    key: str
    button: str
    label: str
    unit: str = "image"
    failure: str = "Could not run"
    kept: str = "steps"


@dataclass(frozen=True)
class ImagesRequest:
    """A benchmark over images on the sidebar's classifier: the uploads (none: the sample photographs) and the
    methods scored."""

    model_id: str
    device: str
    uploads: tuple[Upload, ...]
    methods: tuple[str, ...]


class BenchmarkTab:
    """The base of every Evaluate tab; subclasses set ``texts`` (and ``result``, the result class whose ``merge``
    combines the steps' parts) and override the hooks."""

    texts: ClassVar[Texts]
    result: ClassVar[type | None] = None
    intro: ClassVar[str] = ""  # the caption above the controls ({model_id}: the sidebar's classifier)
    empty: ClassVar[str] = ""  # shown before the first run
    stem: ClassVar[str] = ""  # the downloads' file names ("": the key's)
    precision: ClassVar[int] = 3  # decimals of the table

    def __init__(self, model_id: str = "", device: str = "cpu") -> None:
        self.model_id, self.device = model_id, device  # the sidebar's classifier and device

    def bundle(self):
        """The sidebar's classifier, loaded (cached per process): which methods apply to it."""
        return loaders.classifier(self.model_id, self.device)

    @property
    def key(self) -> str:
        return self.texts.key

    # ---------------------------------------------------------------------------------- hooks
    def controls(self) -> Any | None:
        """Draw the widgets; return the request they make (frozen), or None when it cannot run."""
        raise NotImplementedError

    def steps(self, request: Any) -> Sequence[jobs.Step]:
        """The job's steps for ``request`` (cheap to build: each step does its work when run)."""
        raise NotImplementedError

    def combine(self, request: Any, parts: list[Any]) -> Any:
        """The result of the finished steps' parts (a partial result while the job runs): ``result.merge``."""
        return self.result.merge(parts)

    def table(self, request: Any, result: Any) -> pd.DataFrame:
        """The result as the table the page shows (also the partial result drawn while the job runs)."""
        raise NotImplementedError

    def heading(self, request: Any, result: Any) -> str:
        """A line above the stored result ("" for none)."""
        return ""

    def files(self, request: Any, result: Any) -> EvaluationFiles:
        """The downloads' files (:mod:`glimpse.evaluation.files`, as ``python -m glimpse evaluate --out`` writes
        them): by default of the one result, or of each result of a tuple."""
        results = result if isinstance(result, tuple) else (result,)
        return EvaluationFiles(self.stem or self.key.removeprefix("evaluate_"), results)

    def view(self, request: Any, result: Any) -> None:
        """The stored result: its heading, its table and the downloads."""
        if heading := self.heading(request, result):
            st.markdown(heading)
        self.preview(request, result)
        downloads(self.files(request, result), key=self.key)

    def notes(self, request: Any) -> tuple[str, ...]:
        """Said with the cost before the job starts."""
        return ()

    # ---------------------------------------------------------------------------------- the loop
    def preview(self, request: Any, result: Any, step: int | None = None) -> None:
        """The table (while the job runs: after ``step``; an element that needs a key takes one made with it)."""
        frame = self.table(request, result).style.format(precision=self.precision)
        st.dataframe(frame, hide_index=True, width="stretch")

    def plan(self, request: Any) -> jobs.Plan:
        return jobs.Plan(self.texts.label, tuple(self.steps(request)), unit=self.texts.unit, notes=self.notes(request))

    def draw(self) -> None:
        texts, run_key = self.texts, f"{self.key}_run"
        if self.intro:
            st.caption(self.intro.format(model_id=self.model_id))
        request = self.controls()
        plan = None
        if request is not None:
            try:
                plan = self.plan(request)
            except (ValueError, ModelLoadError) as err:  # a mismatch found before anything ran
                st.error(f"{texts.failure}: {err}")
        if jobs.job_button(texts.button, key=run_key, plan=plan, disabled=plan is None or not plan.steps):
            jobs.run_job(
                plan,
                key=run_key,
                combine=lambda parts: self.combine(request, parts),
                store=lambda result: session_results.put(self.key, (request, result)),
                show=lambda result, k: self.preview(request, result, k),
                errors=(ValueError, ModelLoadError),  # ImageLoadError is a ValueError
                failure=texts.failure,
                cancel_message=f"Cancelled: the finished {texts.kept} are kept; Run resumes from them.",
                forget=lambda: session_results.pop(self.key),
            )
        stored = session_results.get(self.key)
        if stored is None:
            if self.empty:
                st.info(self.empty)
            return
        self.view(*stored)


# -------------------------------------------------------------------------------------------------- shared parts
def method_picker(default, *, key: str, help: str | None = None, where=st, bundle=None) -> list[str]:
    """The registry's methods that apply to ``bundle``'s model (without one: those for any model, so not the
    ViT-only ones), by label and family, ``default`` selected; typing then Enter picks one match."""
    names = [
        n for n, m in REGISTRY.items() if (m.info.models == "any" if bundle is None else m.applies(bundle) is None)
    ]
    return where.multiselect(
        "Methods",
        names,
        default=list(default),
        format_func=lambda n: f"{REGISTRY[n].info.label} ({REGISTRY[n].info.family})",
        key=key,
        help=help,
        **ONE_MATCH_ON_ENTER,
    )


def label(method: str) -> str:
    return REGISTRY[method].info.label


def downloads(files: EvaluationFiles, *, key: str, extra: Sequence[dict] = ()) -> None:
    """The run's files in one row of buttons, the files ``python -m glimpse evaluate --out`` writes: CSV of the
    table (where its rows are flat), JSON with how it was made, NPZ of every image's scores (made when clicked);
    then ``extra`` (``st.download_button``'s arguments: a run bundle)."""
    buttons = [("JSON with how it was made", files.json(), "json", "application/json")]
    if files.flat():
        buttons.insert(0, ("CSV of the table", files.csv(), "csv", "text/csv"))
    if any(r.arrays() for r in files.results):
        buttons.append(("NPZ of every image's scores", files.npz, "npz", "application/octet-stream"))
    columns = st.columns(len(buttons) + len(extra))
    for col, (text, data, ext, mime) in zip(columns, buttons):
        col.download_button(text, data, f"{files.stem}.{ext}", mime, key=f"{key}_{ext}", on_click="ignore")
    for col, button in zip(columns[len(buttons) :], extra):
        col.download_button(**button, on_click="ignore")


def merged_by(parts: Sequence[Any], group: Callable[[Any], Any], groups: Sequence[Any], merge) -> tuple:
    """``parts`` merged per group, in the order of ``groups`` (those with no part yet left out): a run of several
    models or curves whose steps interleave."""
    by = {g: [p for p in parts if group(p) == g] for g in groups}
    return tuple(merge(ps) for ps in by.values() if ps)


def step(name: str, key: tuple, run: Callable[[Callable[[float, str], None]], Any], estimate_s: float | None):
    """One step of a job: ``run(progress)``, remembered under ``key`` (:func:`components.jobs.remembered`), so
    Cancel keeps it and Run resumes from it."""
    return jobs.Step(name, lambda progress: jobs.remembered(key, lambda: run(progress)), estimate_s)


def digest(pixels: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(pixels).tobytes()).hexdigest()[:16]


@st.cache_data(max_entries=64, show_spinner=False)
def decoded(data: bytes) -> np.ndarray:
    from glimpse.images import load_image

    return load_image(data)


@st.cache_data(max_entries=1, show_spinner=False)
def _samples() -> dict[str, np.ndarray]:
    from glimpse.images import sample_images

    return sample_images()


def image_uploader(key: str):
    """Several images to score; none: the sample photographs (:func:`images_or_samples`)."""
    return st.file_uploader("Images (none: the sample photographs)", accept_multiple_files=True, key=key)


def uploads_of(files) -> tuple[Upload, ...]:
    """Uploaded files as a request keeps them: name and bytes, frozen, compared by content."""
    return tuple(Upload(f.name, f.getvalue()) for f in files or ())


def images_or_samples(uploads: Sequence[Upload]) -> dict[str, np.ndarray]:
    """Uploaded images by file name, or the sample photographs when nothing is uploaded (decoded once)."""
    if uploads:
        return {f.name: decoded(f.data) for f in uploads}
    return _samples()


def per_image(
    images: dict[str, np.ndarray],
    run: Callable[[int, str, np.ndarray, Callable[[float, str], None]], Any],
    key: tuple,
    estimate_s: float | None,
) -> list[jobs.Step]:
    """One step per image: ``run(index, name, pixels, progress)``, remembered under ``key`` + the image's
    index and digest (an image uploaded again resumes from its finished step)."""
    return [
        step(
            name, (*key, i, digest(pixels)), lambda progress, i=i, n=name, p=pixels: run(i, n, p, progress), estimate_s
        )
        for i, (name, pixels) in enumerate(images.items())
    ]
