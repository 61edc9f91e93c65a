"""One benchmark tab: controls → a job (its cost first, progress, partial results, Cancel) → table → downloads.

A benchmark supplies its controls (widgets that return a frozen request), its steps (one image, a few
images, a retraining level: each a call of its library function, kept by :func:`components.jobs.remembered`
so Cancel keeps it and Run resumes from it), how its parts combine (the results' ``merge``) and its view.
:meth:`BenchmarkTab.draw` runs the rest, the same on every tab (the pytorch-grad-cam pattern: the base runs
the loop, a subclass overrides its hooks). A new benchmark is one library file and one small subclass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import streamlit as st

from components import jobs, session_results
from components.uploads import Upload
from components.views import ONE_MATCH_ON_ENTER
from glimpse.saliency import REGISTRY
from models.registry import ModelLoadError


class BenchmarkTab:
    """The base of every Evaluate tab; subclasses set the class attributes and override the hooks."""

    key: ClassVar[str]  # the session result's key; the Run button's key is ``{key}_run``
    button: ClassVar[str]  # the Run button's label
    label: ClassVar[str]  # the job's label (shown to the others in the model's line)
    unit: ClassVar[str] = "image"  # what one step is called
    empty: ClassVar[str] = ""  # shown before the first run
    failure: ClassVar[str] = "Could not run"
    kept: ClassVar[str] = "steps"  # "Cancelled: the finished {kept} are kept"
    json_name: ClassVar[str] = ""  # the JSON download's file name ("": the key's)

    def __init__(self, model_id: str = "", device: str = "cpu") -> None:
        self.model_id, self.device = model_id, device  # the sidebar's classifier and device

    # ---------------------------------------------------------------------------------- hooks
    def controls(self) -> Any | None:
        """Draw the widgets; return the request they make (frozen), or None when it cannot run."""
        raise NotImplementedError

    def steps(self, request: Any) -> Sequence[jobs.Step]:
        """The job's steps for ``request`` (cheap to build: each step does its work when run)."""
        raise NotImplementedError

    def combine(self, request: Any, parts: list[Any]) -> Any:
        """The result of the finished steps' parts (a partial result while the job runs)."""
        raise NotImplementedError

    def table(self, request: Any, result: Any) -> pd.DataFrame:
        """The result as the table the page shows (also the partial result drawn while the job runs)."""
        raise NotImplementedError

    def view(self, request: Any, result: Any) -> None:
        """The stored result: by default its table and a JSON of the rows and how they were made."""
        self.preview(request, result)
        name = self.json_name or f"{self.key.removeprefix('evaluate_')}.json"
        json_download(result, name, key=f"{self.key}_json")

    def notes(self, request: Any) -> tuple[str, ...]:
        """Said with the cost before the job starts."""
        return ()

    # ---------------------------------------------------------------------------------- the loop
    def preview(self, request: Any, result: Any, step: int | None = None) -> None:
        """The table (while the job runs: after ``step``; an element that needs a key takes one made with it)."""
        st.dataframe(self.table(request, result).style.format(precision=3), hide_index=True, width="stretch")

    def plan(self, request: Any) -> jobs.Plan:
        return jobs.Plan(self.label, tuple(self.steps(request)), unit=self.unit, notes=self.notes(request))

    def draw(self) -> None:
        request = self.controls()
        plan = None
        if request is not None:
            try:
                plan = self.plan(request)
            except (ValueError, ModelLoadError) as err:  # a mismatch found before anything ran
                st.error(f"{self.failure}: {err}")
        if jobs.job_button(self.button, key=f"{self.key}_run", plan=plan, disabled=plan is None or not plan.steps):
            jobs.run_job(
                plan,
                key=f"{self.key}_run",
                combine=lambda parts: self.combine(request, parts),
                store=lambda result: session_results.put(self.key, (request, result)),
                show=lambda result, k: self.preview(request, result, k),
                errors=(ValueError, ModelLoadError),  # ImageLoadError is a ValueError
                failure=self.failure,
                cancel_message=f"Cancelled: the finished {self.kept} are kept; Run resumes from them.",
                forget=lambda: session_results.pop(self.key),
            )
        stored = session_results.get(self.key)
        if stored is None:
            if self.empty:
                st.info(self.empty)
            return
        self.view(*stored)


# -------------------------------------------------------------------------------------------------- shared parts
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


def label(method: str) -> str:
    return REGISTRY[method].info.label


def json_download(result, file_name: str, *, key: str, text: str = "JSON of the table and how it was made") -> None:
    doc = json.dumps({"rows": result.rows(), "run": result.meta()}, indent=2)
    st.download_button(text, doc, file_name, "application/json", key=key)


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
        jobs.Step(
            name,
            lambda progress, i=i, name=name, pixels=pixels: jobs.remembered(
                (*key, i, digest(pixels)), lambda: run(i, name, pixels, progress)
            ),
            estimate_s,
        )
        for i, (name, pixels) in enumerate(images.items())
    ]
