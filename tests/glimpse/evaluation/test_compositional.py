"""The compositional benchmark: its items, the discriminative baseline and a small run."""

from __future__ import annotations

import numpy as np
import pytest

from glimpse.evaluation.compositional import TASKS, discriminative_choice, run_benchmark, summary, task_items
from glimpse.evaluation.shapes_scenes import HELD_OUT_CAPTIONS, parse_caption

SIZES = {"colour": 4, "shape": 3, "object": 12, "binding": 2, "relation": 2, "count": 2}


@pytest.mark.parametrize("task", TASKS)
def test_items_hold_the_right_caption_among_their_candidates(task):
    items = task_items(task, 6, seed=3)
    again = task_items(task, 6, seed=3)
    assert [i.candidates for i in items] == [i.candidates for i in again]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(items, again))
    for item in items:
        assert len(item.candidates) == SIZES[task] and len(set(item.candidates)) == SIZES[task]
        assert item.image.shape == (32, 32, 3) and item.image.dtype == np.uint8
        spec = parse_caption(item.caption)
        if task in ("binding", "relation"):
            assert item.caption in HELD_OUT_CAPTIONS  # never seen by the text-to-image model
        if task in ("colour", "shape", "object"):
            assert spec.relation is None
    assert len({i.answer for i in task_items(task, 30, seed=0)}) > 1  # the right one is not always first


def test_the_shapes_classifier_reads_colour_but_cannot_tell_a_relation():
    from models.registry import load_classifier

    bundle = load_classifier("shapes-classifier", device="cpu")
    rng = np.random.default_rng(0)
    colour = task_items("colour", 12, seed=0)
    assert np.mean([discriminative_choice(bundle, i.image, i.candidates, rng) == i.answer for i in colour]) > 0.9
    relation = task_items("relation", 40, seed=0)
    hits = np.mean([discriminative_choice(bundle, i.image, i.candidates, rng) == i.answer for i in relation])
    assert 0.25 < hits < 0.75  # the same objects either way: a coin flip


def test_a_small_run_scores_every_scorer_and_pruning_spends_less():
    from models.diffusion import load_pipeline
    from models.registry import load_classifier

    rows = run_benchmark(
        load_pipeline("shapes-t2i", device="cpu"),
        load_classifier("shapes-classifier", device="cpu"),
        ("object",),
        items=2,
        seeds=(0,),
        sources=("drawn",),
        full={"samples": 4},
        pruned={"samples": (1, 4), "keep": (2, 1)},
    )
    scorers = [r["scorer"] for r in rows]
    assert scorers == ["diffusion", "diffusion (pruned)", "shapes classifier", "chance"]
    by = {r["scorer"]: r for r in rows}
    assert by["chance"]["accuracy"] == pytest.approx(1 / 12)
    assert (
        by["diffusion"]["evaluations_per_image"] == 12 * 4
        and by["diffusion (pruned)"]["evaluations_per_image"] == 12 + 2 * 3
    )
    (table,) = [r for r in summary(rows) if r["scorer"] == "diffusion"]
    assert table["seeds"] == 1 and table["accuracy_sd"] == 0.0
