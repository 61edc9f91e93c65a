"""Whole data sets: a task per image (complexity, saliency, faithfulness) over a folder, glob, zip or table of paths, in this
process or on a Ray cluster, one Parquet row per image (:mod:`glimpse.batch.run`)."""

from glimpse.batch.inputs import IMAGE_SUFFIXES, Item, list_inputs
from glimpse.batch.run import BatchReport, read_rows, run_batch
from glimpse.batch.tasks import ComplexityTask, EvaluateTask, SaliencyTask, Task

__all__ = [
    "IMAGE_SUFFIXES",
    "BatchReport",
    "ComplexityTask",
    "EvaluateTask",
    "Item",
    "SaliencyTask",
    "Task",
    "list_inputs",
    "read_rows",
    "run_batch",
]
