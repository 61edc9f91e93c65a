"""A whole data set from a page: a folder (or glob, zip, table of paths) on this machine's disk, scored in this
process or on a Ray cluster (``glimpse.batch``), the rows shown and downloadable.

Reading and writing server paths is only offered when the app runs for its own user: ``GLIMPSE_SERVER_PATHS=1``
(``make run`` sets it). A hosted Space leaves it unset, so visitors cannot read or write the server's files.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable

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


def dataset_runner(kind: str, make_task: Callable[[str, int | None], object], *, key: str) -> None:
    """The form and the result of one batch run of ``kind``; ``make_task(out, threads)`` builds its task."""
    if not allowed():
        st.caption(
            f"Whole data sets on this machine's disk (in this process or on a Ray cluster) run when the app is "
            f"started for its own user (`{ENV}=1`, as `make run` does), or from the command line: "
            f"`python -m glimpse batch {kind} INPUT --out OUT [--ray ADDRESS]`."
        )
        return
    problem = ray_status()
    with st.form(f"{key}_form", border=True):
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
        go = st.form_submit_button("Run the data set", icon=":material/dataset:")
    if problem:
        st.caption(problem)
    if go:
        _run(kind, make_task, source.strip(), out.strip(), address.strip() or None, int(workers), resume, key)
    stored = session_results.get((key, "batch"))
    if stored is not None:
        report, rows = stored
        st.success(
            f"{report.written} rows written ({report.errors} with an error, {report.skipped} already there) in "
            f"{report.seconds:.1f} s, {report.images_per_second:.2f} images/s, {report.engine}."
        )
        st.dataframe(rows, hide_index=True, width="stretch", key=f"{key}_rows")
        buf = io.BytesIO()
        rows.to_parquet(buf, index=False)
        st.download_button(
            "Rows (Parquet)", buf.getvalue(), f"{kind}_rows.parquet", "application/octet-stream", key=f"{key}_dl"
        )


def _run(kind, make_task, source: str, out: str, address: str | None, workers: int, resume: bool, key: str) -> None:
    from glimpse.batch import list_inputs, read_rows, run_batch

    if not source or not out:
        st.warning("Give an input and an output folder.")
        return
    try:
        with jobs.bar("Scoring", unit="image") as progress:
            items = list_inputs(os.path.expanduser(source))
            task = make_task(os.path.expanduser(out), None)
            report = run_batch(
                task, items, os.path.expanduser(out), resume=resume, ray=address, workers=workers, progress=progress
            )
    except (ValueError, OSError) as err:
        st.error(f"Cannot run the data set: {str(err).splitlines()[0]}")
        return
    session_results.put((key, "batch"), (report, read_rows(os.path.expanduser(out))))
