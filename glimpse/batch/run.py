"""Run a task over every image of an input, in this process or as a Ray Data pipeline; rows go to Parquet.

The output folder holds ``rows/`` (a Parquet data set: one row per image, the same columns either way) and
whatever the task writes beside it (``maps/`` for saliency). Rows are written batch by batch, so an
interrupted run keeps what it finished and ``resume=True`` computes only the images without a row.

With Ray (``ray="local"`` for a runtime on this machine, or a cluster address such as ``ray://head:10001``):
read the items → decode them in CPU tasks (``map``) → the task in an actor pool that holds the model
(``map_batches`` with ``ActorPoolStrategy``, one GPU per actor when ``gpus_per_worker`` is set) → the rows stream
back and are written as Parquet parts batch by batch, as in-process. A task that loads nothing (complexity) runs
as plain Ray tasks that decode and compute in one step (``TaskPoolStrategy``): task workers start with the runtime,
where an actor pool starts new processes for each pipeline. Ray's own progress bars report the count and an
estimate; in-process runs report through ``progress(done, total)`` (the command line draws a tqdm bar).
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from glimpse.batch.inputs import Item
from glimpse.batch.tasks import Task, decode


@dataclass(frozen=True)
class BatchReport:
    images: int  # in the input
    skipped: int  # already written (resume)
    written: int  # rows written by this run
    errors: int  # of those, rows with an error
    seconds: float
    engine: str  # "in-process" or the Ray address

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else float("nan")


def rows_dir(out: str | os.PathLike) -> Path:
    return Path(out) / "rows"


def read_rows(out: str | os.PathLike):
    """Every row written to ``out`` so far, as a pandas DataFrame sorted by ``path`` (empty when none)."""
    import pandas as pd

    folder = rows_dir(out)
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return pd.DataFrame()
    frame = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default").to_pandas()
    return frame.sort_values("path", kind="stable").reset_index(drop=True)


def done_keys(out: str | os.PathLike) -> set[str]:
    folder = rows_dir(out)
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    return {k for f in files for k in pq.read_table(f, columns=["path"]).column("path").to_pylist()}


def run_batch(
    task: Task,
    items: Sequence[Item],
    out: str | os.PathLike,
    *,
    resume: bool = False,
    batch_size: int = 8,
    ray: str | None = None,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> BatchReport:
    """Compute ``task`` for every item without a row yet (``resume``) or for all (a fresh ``out``)."""
    if batch_size < 1:
        raise ValueError(f"batch_size: at least 1, got {batch_size}")
    if workers < 1:
        raise ValueError(f"workers: at least 1, got {workers}")
    folder = rows_dir(out)
    if folder.is_dir() and any(folder.glob("*.parquet")) and not resume:
        raise ValueError(f"out: {out} already holds rows; pass --resume to add the missing ones, or another folder")
    folder.mkdir(parents=True, exist_ok=True)
    skip = done_keys(out) if resume else set()
    todo = [i for i in items if i.key not in skip]
    start = time.perf_counter()
    if ray is None:
        written, errors = _in_process(task, todo, folder, batch_size, progress)
        engine = "in-process"
    else:
        written, errors = _with_ray(task, todo, folder, batch_size, ray, workers, gpus_per_worker)
        engine = f"ray ({ray}, {workers} worker{'s' if workers > 1 else ''})"
    return BatchReport(len(items), len(items) - len(todo), written, errors, time.perf_counter() - start, engine)


def _write_part(table: pa.Table, folder: Path) -> tuple[int, int]:
    """One batch's rows as a new part file in ``rows/``; returns (rows, error rows)."""
    pq.write_table(table, folder / f"part-{uuid.uuid4().hex}.parquet")
    return table.num_rows, table.num_rows - table.column("error").null_count


def _in_process(task, todo, folder: Path, batch_size: int, progress) -> tuple[int, int]:
    written = errors = 0
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        decoded = [decode(i) for i in chunk]
        rows, bad = _write_part(
            task.table([i.key for i in chunk], [d[0] for d in decoded], [d[1] for d in decoded]), folder
        )
        written, errors = written + rows, errors + bad
        if progress is not None:
            progress(written, len(todo))
    return written, errors


def _decode_row(row: dict) -> dict:
    pixels, error = decode(Item.from_row(row))
    return {"path": row["path"], "pixels": pixels, "error": error or ""}


def _decode_and_run(task_class, kwargs: dict, rows) -> pa.Table:
    """A stateless task's Ray batch: decode the rows' images, then compute (one worker step)."""
    items = [Item.from_row(row) for row in rows.to_dict("records")]
    decoded = [decode(item) for item in items]
    task = task_class(**kwargs)
    return task.table([i.key for i in items], [p for p, _ in decoded], [e for _, e in decoded])


def _with_ray(task, todo, folder: Path, batch_size: int, address: str, workers: int, gpus: float) -> tuple[int, int]:
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise ValueError("--ray: Ray is not installed; pip install -e '.[ray]' (see requirements-ray.txt)") from err
    if not todo:
        return 0, 0
    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=max(2, workers + 1), include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    ds = ray.data.from_items([i.as_row() for i in todo])
    if task.stateless and not gpus:
        # Nothing to load: plain Ray tasks that decode and compute in one step. Ray starts its task workers with
        # the runtime and reuses them, where an actor pool starts (and imports torch in) new processes for every
        # pipeline, seconds that a cheap task over a few hundred images cannot hide.
        ds = ds.map_batches(
            functools.partial(_decode_and_run, type(task), task.constructor_kwargs()),
            batch_size=batch_size,
            batch_format="pandas",
            compute=ray.data.TaskPoolStrategy(size=workers),
        )
    else:
        ds = ds.map(_decode_row)  # CPU tasks
        ds = ds.map_batches(
            type(task),
            fn_constructor_kwargs=task.constructor_kwargs(),
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_gpus=gpus or None,
        )
    # Rows stream back to this process and are written batch by batch, as in-process: a stopped run keeps every
    # finished batch for --resume, and nothing is written twice. Rows are small (features, per-method statistics);
    # saliency maps are written by the workers themselves (on a cluster, to storage every node sees).
    written = errors = 0
    for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        rows, bad = _write_part(table.cast(task.schema), folder)
        written, errors = written + rows, errors + bad
    return written, errors
