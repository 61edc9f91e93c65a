"""A whole data set from a page: a folder (or glob, zip, table of paths) on this machine's disk, scored in this
process or on a Ray cluster (``glimpse.batch``), the rows shown and downloadable.

Reading and writing server paths is only offered when the app runs for its own user: ``GLIMPSE_SERVER_PATHS=1``
(``make run`` sets it). A hosted Space leaves it unset, so visitors cannot read or write the server's files.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from components import jobs, session_results

ENV = "GLIMPSE_SERVER_PATHS"


def allowed() -> bool:
    return os.environ.get(ENV, "").lower() in {"1", "true", "yes"}


def ray_status() -> str | None:
    """None when Ray imports, else why not."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "Ray is not installed here (pip install -e '.[ray]'): data sets run in this process"
    return None


#: images per step of a data-set job in this process (glimpse.batch's batch size: one Parquet part a step)
CHUNK = 8
#: images per step on a Ray cluster (a step is one ray.data run over them)
RAY_CHUNK = 64


def dataset_runner(
    kind: str,
    make_task: Callable[[str, int | None], object],
    *,
    key: str,
    seconds_per_image: Callable[[], float | None] | None = None,
) -> None:
    """The controls and the result of one batch run of ``kind`` as a job (components/jobs.py): its cost before
    it starts, "batch 3 of 12" with the time left, the rows so far as they are written, Cancel (the written rows
    stay in the output folder; Resume adds the rest). ``make_task(out, threads)`` builds its task;
    ``seconds_per_image()`` is its expected cost per image on this machine (None: unknown)."""
    if not allowed():
        st.caption(
            f"Whole data sets on this machine's disk (in this process or on a Ray cluster) run when the app is "
            f"started for its own user (`{ENV}=1`, as `make run` does), or from the command line: "
            f"`python -m glimpse batch {kind} INPUT --out OUT [--ray ADDRESS]`."
        )
        return
    problem = ray_status()
    with st.container(border=True):
        st.markdown(f"**A whole data set** · `python -m glimpse batch {kind}` from this page")
        source = st.text_input("Input", placeholder="/data/photos, /data/*.jpg, set.zip or paths.csv", key=f"{key}_in")
        out = st.text_input("Output folder", placeholder="/data/scores", key=f"{key}_out")
        c1, c2, c3 = st.columns([2, 1, 1])
        address = c1.text_input(
            "Ray address",
            placeholder="empty: this process · local · ray://head:10001",
            disabled=problem is not None,
            help=problem or "A Ray cluster (its ray:// address) or a local runtime (local); empty runs here.",
            key=f"{key}_ray",
        )
        workers = c2.number_input("Workers", 1, 256, 1, key=f"{key}_workers", disabled=problem is not None)
        resume = c3.checkbox("Resume", key=f"{key}_resume", help="Add only the images the folder has no row for.")
        if problem:
            st.caption(problem)
        request = _Run(kind, source.strip(), out.strip(), address.strip() or None, int(workers), resume)
        planned = _plan(request, make_task, seconds_per_image) if request.source and request.out else None
        if planned is None:
            st.caption("Give an input and an output folder.")
        elif isinstance(planned, str):
            st.caption(planned)
            planned = None
        plan, skipped = planned or (None, 0)
        go = jobs.job_button(
            "Run the data set", key=f"{key}_run", plan=plan, disabled=plan is None, icon=":material/dataset:"
        )
    if go:
        _run(plan, request, key, skipped)
    stored = session_results.get((key, "batch"))
    if stored is not None:
        report, rows = stored
        st.success(
            f"{report.written} rows written ({report.errors} with an error, {report.skipped} already there) in "
            f"{report.seconds:.1f} s, {report.images_per_second:.2f} images/s, {report.engine}."
        )
        _rows_view(rows, kind, key)


@dataclass(frozen=True)
class _Run:
    kind: str
    source: str
    out: str
    address: str | None
    workers: int
    resume: bool


def _plan(request: _Run, make_task, seconds_per_image) -> tuple[jobs.Plan, int] | str:
    """The job of ``request`` (one step per CHUNK images still to do) and how many images already have a row;
    a string says why there is nothing to run."""
    from glimpse.batch import list_inputs
    from glimpse.batch.run import done_keys, rows_dir

    out = os.path.expanduser(request.out)
    try:
        items = list_inputs(os.path.expanduser(request.source))
    except (ValueError, OSError) as err:
        return f"Cannot read the input: {str(err).splitlines()[0]}"
    folder = rows_dir(out)
    if folder.is_dir() and any(folder.glob("*.parquet")) and not request.resume:
        return f"{request.out} already holds rows: tick Resume to add the missing ones, or give another folder."
    done = done_keys(out) if request.resume else set()
    todo = [item for item in items if item.key not in done]
    if not todo:
        return f"Every image of the input already has a row in {request.out}."
    task = make_task(out, None)
    size = CHUNK if request.address is None else RAY_CHUNK
    per = seconds_per_image() if seconds_per_image is not None and request.address is None else None
    chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
    steps = tuple(
        jobs.Step(
            f"{len(c)} images",
            lambda progress, c=c: _step(task, c, out, request),
            None if per is None else per * len(c),
        )
        for c in chunks
    )
    skipped = len(items) - len(todo)
    notes = (f"{len(todo)} images", *((f"{skipped} already there",) if skipped else ()))
    return jobs.Plan(f"the {request.kind} data set", steps, unit="batch", notes=notes), skipped


def _step(task, chunk, out: str, request: _Run):
    from glimpse.batch import run_batch

    return run_batch(task, chunk, out, resume=True, ray=request.address, workers=request.workers)


def _combine(reports, skipped: int):
    """One report for the steps' reports (each step ran its images with resume, so it skipped none)."""
    from glimpse.batch import BatchReport

    return BatchReport(
        images=sum(r.images for r in reports) + skipped,
        skipped=skipped,
        written=sum(r.written for r in reports),
        errors=sum(r.errors for r in reports),
        seconds=sum(r.seconds for r in reports),
        engine=reports[0].engine if reports else "in-process",
    )


def _rows_view(rows, kind: str, key: str, k: int | None = None) -> None:
    st.dataframe(rows, hide_index=True, width="stretch", key=f"{key}_rows" if k is None else f"{key}_rows_{k}")
    if k is None:
        buf = io.BytesIO()
        rows.to_parquet(buf, index=False)
        st.download_button(
            "Rows (Parquet)", buf.getvalue(), f"{kind}_rows.parquet", "application/octet-stream", key=f"{key}_dl"
        )


def _run(plan: jobs.Plan, request: _Run, key: str, skipped: int) -> None:
    from glimpse.batch import read_rows

    out = os.path.expanduser(request.out)
    jobs.run_job(
        plan,
        key=f"{key}_run",
        combine=lambda parts: _combine(parts, skipped),
        store=lambda report: session_results.put((key, "batch"), (report, read_rows(out))),
        show=lambda report, k: _rows_view(read_rows(out), request.kind, key, k),
        errors=(ValueError, OSError),
        failure="Cannot run the data set",
        cancel_message=f"Cancelled: the rows written so far are in {request.out}; tick Resume and Run to add the rest.",
        forget=lambda: session_results.pop((key, "batch")),
    )
