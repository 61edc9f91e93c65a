"""Shapes scenes of growing clutter, with exact masks: the ground truth of the faithfulness-against-complexity
study (``glimpse study shapes-clutter``).

A scene of clutter level ``L`` (1–6) on the shapes world's 32×32 canvas (:mod:`glimpse.evaluation.shapes_scenes`)
holds ``L`` objects of the 12 "colour shape" classes, ``L − 1`` distractors (shapes in colours that are no
class: grey, black, purple) and, from level 2 up, a textured background (smooth value noise plus stripes whose
contrast grows with the level). Objects shrink as they multiply (12 px at level 1 to 7 px at level 6) and may
overlap; later shapes occlude earlier ones and every mask holds only the visible pixels. The *target* of a
scene is its largest visible object: the class a map should explain, and the mask it should land on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glimpse.evaluation.shapes_scenes import COLOURS, IMAGE_SIZE, OBJECTS, SHAPES, _shape_mask

LEVELS = (1, 2, 3, 4, 5, 6)
#: colours of the distractors: far from the palette, and no class of the shapes classifier
DISTRACTOR_COLOURS = {"grey": (128, 128, 128), "black": (20, 20, 20), "purple": (140, 40, 170)}


@dataclass(frozen=True)
class ClutterScene:
    """A rendered scene: ``image`` uint8 (32, 32, 3); ``objects`` the "colour shape" of each object;
    ``masks`` each object's visible pixels; ``target`` the index (in ``OBJECTS``) of the largest visible
    object and ``mask`` its mask."""

    image: np.ndarray
    level: int
    objects: tuple[str, ...]
    masks: tuple[np.ndarray, ...]
    target: int
    mask: np.ndarray


def _background(rng: np.random.Generator, level: int) -> np.ndarray:
    """White at level 1; from level 2, value noise and stripes of contrast growing with the level."""
    canvas = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 255.0)
    if level <= 1:
        return canvas
    amplitude = 40.0 * (level - 1)  # 40 .. 200 grey levels peak to peak
    coarse = rng.uniform(-0.5, 0.5, (5, 5, 3))
    idx = np.linspace(0, 4, IMAGE_SIZE)
    i0 = np.floor(idx).astype(int).clip(0, 3)
    t = idx - i0
    rows = coarse[i0] * (1 - t)[:, None, None] + coarse[i0 + 1] * t[:, None, None]
    noise = rows[:, i0] * (1 - t)[None, :, None] + rows[:, i0 + 1] * t[None, :, None]
    period, angle = rng.uniform(3.0, 8.0), rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    stripes = 0.5 * np.sign(np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period))
    texture = 0.6 * noise + 0.4 * stripes[..., None]
    return np.clip(canvas - amplitude * (texture + 0.5), 0, 255)


def render_clutter(level: int, rng: np.random.Generator) -> ClutterScene:
    """One scene of clutter ``level`` (1–6) drawn from ``rng``."""
    if int(level) not in LEVELS:
        raise ValueError(f"level: clutter levels are {LEVELS[0]}..{LEVELS[-1]}, got {level}")
    level = int(level)
    canvas = _background(rng, level)
    size = 12.0 - (level - 1)
    shapes: list[tuple[str, tuple[int, int, int], bool]] = []
    for _ in range(level):
        colour = list(COLOURS)[rng.integers(len(COLOURS))]
        shapes.append((f"{colour} {SHAPES[rng.integers(len(SHAPES))]}", COLOURS[colour], True))
    for _ in range(level - 1):
        name = list(DISTRACTOR_COLOURS)[rng.integers(len(DISTRACTOR_COLOURS))]
        shapes.append((SHAPES[rng.integers(len(SHAPES))], DISTRACTOR_COLOURS[name], False))
    order = rng.permutation(len(shapes))
    objects, masks = [], []
    for k in order:
        label, colour, is_object = shapes[k]
        s = size * rng.uniform(0.85, 1.15)
        lo, hi = s / 2 + 0.5, IMAGE_SIZE - s / 2 - 0.5
        m = _shape_mask(label.split()[-1], rng.uniform(lo, hi), rng.uniform(lo, hi), s)
        for earlier in masks:
            earlier &= ~m
        canvas[m] = colour
        if is_object:
            objects.append(label)
            masks.append(m)
    areas = [int(m.sum()) for m in masks]
    best = int(np.argmax(areas))
    if areas[best] == 0:  # every object hidden: draw again (vanishingly rare at these sizes)
        return render_clutter(level, rng)
    image = np.round(canvas).astype(np.uint8)
    return ClutterScene(image, level, tuple(objects), tuple(masks), OBJECTS.index(objects[best]), masks[best])


def clutter_set(per_level: int, seed: int = 0) -> list[ClutterScene]:
    """``per_level`` scenes at each level 1–6, level by level, from ``seed``."""
    rng = np.random.default_rng(2_000_000 + int(seed))
    return [render_clutter(level, rng) for level in LEVELS for _ in range(int(per_level))]
