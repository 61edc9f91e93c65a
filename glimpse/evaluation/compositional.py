"""Does the embedded text-to-image model understand colour, shape and place? The compositional benchmark of
the diffusion classifier (after Jeong et al., "Diffusion Classifiers Understand Compositionality, but
Conditions Apply", 2025), on the shapes domain.

Tasks (each item: an image, candidate captions, the right one):

- ``colour``: one object; which of the 4 colours (chance 1/4).
- ``shape``: one object; which of the 3 shapes (1/3).
- ``object``: one object; which of the 12 colour-shape captions (1/12); the task where pruning pays.
- ``binding``: two objects; the caption or the one with the colours swapped (1/2).
- ``relation``: two objects; the caption or the one with the relation flipped (1/2).
- ``count``: one or two objects (half each); the caption or the one with an object added or dropped (1/2).

Two-object items use the 24 held-out captions the text-to-image model never saw in training (in either
phrasing). Images are either ``drawn`` by the scene generator (:func:`glimpse.evaluation.shapes_scenes.render_scene`) or
``generated`` by the embedded model from the right caption, so a generated item is right when the classifier
recovers the prompt the image was made from (the generator itself places two objects correctly about two
times in three: its model card).

Scored by the diffusion classifier (:func:`glimpse.diffusion_classifier.classify`, full or pruned), by the
discriminative shapes classifier (the caption whose objects its 12 sigmoid outputs find most likely; it has
no notion of place, so relation ties and is broken at random), and chance.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from glimpse.evaluation.shapes_scenes import (
    COLOURS,
    HELD_OUT_SPECS,
    OPPOSITE,
    RELATIONS,
    SHAPES,
    CaptionSpec,
    ObjectSpec,
    parse_caption,
    render_scene,
    single_object_specs,
)

TASKS = ("colour", "shape", "object", "binding", "relation", "count")
SOURCES = ("drawn", "generated")
#: the paper's CLEVR figures (Jeong et al. 2025): task -> {model: accuracy}
PAPER = {
    "relation": {"SD1.5": 0.53, "SD2.0": 0.49, "SD3-m": 0.41},
    "binding": {"SD1.5": 0.63, "SD2.0": 0.81, "SD3-m": 0.57},
}


@dataclass(frozen=True)
class CompositionalItem:
    """One question of the benchmark: an image, its candidate captions and the index of the right one."""

    task: str
    source: str
    image: np.ndarray  # uint8 (32, 32, 3)
    candidates: tuple[str, ...]
    answer: int

    @property
    def caption(self) -> str:
        return self.candidates[self.answer]


def _other_object(rng: np.random.Generator, avoid_colour: str) -> ObjectSpec:
    colour = rng.choice([c for c in COLOURS if c != avoid_colour])
    return ObjectSpec(str(colour), str(rng.choice(SHAPES)))


def _specs(task: str, n: int, rng: np.random.Generator) -> list[tuple[CaptionSpec, list[str]]]:
    """``n`` (right caption's spec, candidate captions with the right one first) for ``task``."""
    singles = single_object_specs()
    out = []
    for i in range(n):
        if task in ("colour", "shape", "object") or (task == "count" and i % 2 == 0):
            spec = singles[rng.integers(len(singles))]
            (obj,) = spec.objects
            if task == "colour":
                others = [f"a {c} {obj.shape}" for c in COLOURS if c != obj.colour]
            elif task == "shape":
                others = [f"a {obj.colour} {s}" for s in SHAPES if s != obj.shape]
            elif task == "object":
                others = [s.text for s in singles if s != spec]
            else:  # count: one object, or one more
                more = CaptionSpec((obj, _other_object(rng, obj.colour)), str(rng.choice(list(RELATIONS))))
                others = [more.text]
        else:
            spec = HELD_OUT_SPECS[rng.integers(len(HELD_OUT_SPECS))]
            a, b = spec.objects
            if task == "binding":
                others = [
                    CaptionSpec((ObjectSpec(b.colour, a.shape), ObjectSpec(a.colour, b.shape)), spec.relation).text
                ]
            elif task == "relation":
                others = [CaptionSpec(spec.objects, OPPOSITE[spec.relation]).text]
            else:  # count: two objects, or one of them
                others = [CaptionSpec((spec.objects[int(rng.integers(2))],)).text]
        out.append((spec, [spec.text, *others]))
    return out


def task_items(task: str, n: int, *, source: str = "drawn", seed: int = 0, pipe: Any = None) -> list[CompositionalItem]:
    """``n`` items of ``task`` (module docstring), deterministic from ``seed``; candidates in a shuffled order.
    ``source="generated"`` needs ``pipe`` (the embedded ShapesPipeline)."""
    if task not in TASKS:
        raise ValueError(f"task: one of {', '.join(TASKS)}, got {task!r}")
    if source not in SOURCES:
        raise ValueError(f"source: one of {', '.join(SOURCES)}, got {source!r}")
    rng = np.random.default_rng([seed, TASKS.index(task), SOURCES.index(source)])
    specs = _specs(task, n, rng)
    if source == "drawn":
        images = [render_scene(spec, rng).image for spec, _ in specs]
    else:
        if pipe is None:
            raise ValueError("source 'generated': pass the text-to-image pipeline")
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        images = []
        for lo in range(0, n, 32):
            batch = [spec.text for spec, _ in specs[lo : lo + 32]]
            out = pipe(batch, generator=generator, output_type="np").images
            images += [(np.asarray(im) * 255).round().astype(np.uint8) for im in out]
    items = []
    for (_, candidates), image in zip(specs, images):
        order = rng.permutation(len(candidates))
        shuffled = tuple(candidates[j] for j in order)
        items.append(CompositionalItem(task, source, image, shuffled, int(np.argmax(order == 0))))
    return items


def discriminative_choice(bundle, image: np.ndarray, candidates: Sequence[str], rng: np.random.Generator) -> int:
    """The candidate whose set of (colour, shape) objects the multi-label shapes classifier finds most likely:
    Σ over its 12 outputs of log σ(z) for the objects the caption names and log(1 − σ(z)) for the others.
    Exact ties (captions naming the same objects) are broken at random. ``bundle``'s labels are the scenes'
    "colour shape" objects (the embedded ``shapes-classifier``)."""
    with torch.no_grad():
        z = bundle.model(bundle.preprocess(image)).float()[0]
    present, absent = torch.nn.functional.logsigmoid(z), torch.nn.functional.logsigmoid(-z)
    scores = []
    for caption in candidates:
        named = {f"{o.colour} {o.shape}" for o in parse_caption(caption).objects}
        scores.append(float(sum(present[i] if label in named else absent[i] for i, label in enumerate(bundle.labels))))
    best = [i for i, s in enumerate(scores) if s >= max(scores) - 1e-9]
    return int(rng.choice(best))


#: the diffusion classifier's two settings: every timestep for every candidate, and pruned
FULL = {"samples": 30}
PRUNED = {"samples": (1, 30), "keep": (2, 1)}


def run_benchmark(
    pipeline,
    shapes,
    tasks: Sequence[str] = TASKS,
    *,
    items: int = 16,
    seeds: Sequence[int] = (0, 1),
    sources: Sequence[str] = SOURCES,
    full: dict = FULL,
    pruned: dict | None = PRUNED,
    progress: Callable[[float, str], None] | None = None,
) -> list[dict[str, Any]]:
    """Accuracy per task, source, scorer and seed (one row each), with the denoiser evaluations spent.

    ``pipeline`` is the embedded text-to-image model's bundle (``models.diffusion.load_pipeline("shapes-t2i")``),
    both the diffusion classifier and the generator of the ``generated`` images; ``shapes`` the discriminative
    baseline (``models.registry.load_classifier("shapes-classifier")``).
    """
    from glimpse.diffusion_classifier import adapter_for, classify

    report = progress or (lambda f, m: None)
    bundle = pipeline
    model = adapter_for(bundle.pipe, bundle.model_id)
    settings = {"diffusion": full, **({"diffusion (pruned)": pruned} if pruned else {})}
    rows = []
    cells = [(t, s, seed) for t in tasks for s in sources for seed in seeds]
    for c, (task, source, seed) in enumerate(cells):
        report(c / len(cells), f"{task}, {source} images, seed {seed} ({c + 1} of {len(cells)})")
        batch = task_items(task, items, source=source, seed=seed, pipe=bundle.pipe)
        rng = np.random.default_rng([seed, 99])
        right = {name: 0 for name in settings} | {"shapes classifier": 0}
        spent = {name: 0 for name in settings}
        seconds = {name: 0.0 for name in settings}
        for j, item in enumerate(batch):
            for name, options in settings.items():
                start = time.perf_counter()
                result = classify(model, item.image, item.candidates, seed=1000 * seed + j, **options)
                seconds[name] += time.perf_counter() - start
                right[name] += result.prediction == item.answer
                spent[name] += result.denoiser_evaluations
            right["shapes classifier"] += discriminative_choice(shapes, item.image, item.candidates, rng) == item.answer
        chance = float(np.mean([1 / len(item.candidates) for item in batch]))
        for name, hits in right.items():
            row = {"task": task, "source": source, "seed": seed, "scorer": name, "accuracy": hits / len(batch)}
            if name in spent:
                row["evaluations_per_image"] = spent[name] / len(batch)
                row["seconds_per_image"] = seconds[name] / len(batch)
            rows.append(row)
        rows.append({"task": task, "source": source, "seed": seed, "scorer": "chance", "accuracy": chance})
    report(1.0, "done")
    return rows


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sd over seeds per task, source and scorer (and the mean evaluations per image)."""
    keys = list(dict.fromkeys((r["task"], r["source"], r["scorer"]) for r in rows))
    out = []
    for task, source, scorer in keys:
        group = [r for r in rows if (r["task"], r["source"], r["scorer"]) == (task, source, scorer)]
        acc = np.array([r["accuracy"] for r in group])
        row = {"task": task, "source": source, "scorer": scorer, "accuracy": float(acc.mean())}
        row["accuracy_sd"] = float(acc.std())
        row["seeds"] = len(group)
        if "evaluations_per_image" in group[0]:
            row["evaluations_per_image"] = float(np.mean([r["evaluations_per_image"] for r in group]))
            row["seconds_per_image"] = float(np.mean([r["seconds_per_image"] for r in group]))
        out.append(row)
    return out
