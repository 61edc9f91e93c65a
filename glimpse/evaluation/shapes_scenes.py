"""Synthetic scenes of coloured shapes with exact masks: the data of the embedded shapes models (text-to-image and classifier).

The scenes, their captions and their vocabulary are defined here; the embedded models that learnt them
(``models/shapes_pipeline.py``, ``models/shapes_classifier.py``) take their image size, vocabulary and classes
from this module.

A scene is one or two flat-coloured shapes (circle, square, triangle) on a white 32x32 canvas,
captioned from a closed vocabulary:

* one object:  ``"a green triangle"``
* two objects: ``"a red circle to the left of a blue square"`` (relations: ``to the left of``,
  ``to the right of``, ``above``, ``below``).

The two objects of a scene always have different colours, so that a generated image can be segmented
by colour against white to check colour, shape and placement (see ``training/shapes_t2i/evaluate.py``).

Held-out captions
-----------------
``HELD_OUT_CAPTIONS`` are two-object captions never used in training. A scene can be described in two
mirrored ways ("A left of B" == "B right of A"); both phrasings of every held-out scene are removed
from training, so the model never sees a held-out *scene*, not only the held-out *sentence*.

The renderer draws hard-edged (aliased) shapes so that every pixel is exactly white or one palette
colour, and the per-object masks are exact.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

#: Side of a scene in pixels (and of the images the embedded text-to-image model generates).
IMAGE_SIZE = 32
#: Every word a caption may use, in the embedded text-to-image model's tokenizer order.
VOCABULARY: tuple[str, ...] = (
    "a",
    *("red", "green", "blue", "yellow"),
    *("circle", "square", "triangle"),
    *("to", "the", "left", "right", "of", "above", "below"),
)

#: Palette in uint8 RGB; chosen far apart from each other and from white so that nearest-colour
#: segmentation of generated images is unambiguous.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 60, 220),
    "yellow": (240, 200, 20),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
#: every object a scene may hold, "colour shape", colour-major (the embedded shapes classifier's classes)
OBJECTS: tuple[str, ...] = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)
#: relation phrase -> (axis, sign): the first object's centre minus the second's along ``axis``
#: (0 = x, 1 = y, image rows grow downwards) has this sign.
RELATIONS: dict[str, tuple[int, int]] = {
    "to the left of": (0, -1),
    "to the right of": (0, +1),
    "above": (1, -1),
    "below": (1, +1),
}
#: relation phrase -> the phrase that says the same with the objects swapped
OPPOSITE: dict[str, str] = {
    "to the left of": "to the right of",
    "to the right of": "to the left of",
    "above": "below",
    "below": "above",
}

# Every word a caption may use is in VOCABULARY (the tokenizer adds BERT's special tokens).
assert set(VOCABULARY) == {"a", *COLOURS, *SHAPES, *" ".join(RELATIONS).split()}, "captions use a word the model lacks"

#: Number of held-out scenes per relation axis; each contributes two captions (both phrasings).
_HELD_OUT_SCENES_PER_AXIS = 6
_HELD_OUT_SEED = 1234


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a caption: its colour and shape words."""

    colour: str
    shape: str


@dataclass(frozen=True)
class CaptionSpec:
    """Parsed caption: one object, or two objects and the relation of the first to the second."""

    objects: tuple[ObjectSpec, ...]
    relation: str | None = None

    @property
    def text(self) -> str:
        first = f"a {self.objects[0].colour} {self.objects[0].shape}"
        if self.relation is None:
            return first
        second = f"a {self.objects[1].colour} {self.objects[1].shape}"
        return f"{first} {self.relation} {second}"

    def mirrored(self) -> CaptionSpec:
        """The same scene described from the other object ("A left of B" -> "B right of A")."""
        if self.relation is None:
            return self
        return CaptionSpec((self.objects[1], self.objects[0]), OPPOSITE[self.relation])


@dataclass(frozen=True)
class Scene:
    """A rendered scene.

    Attributes
    ----------
    image : np.ndarray
        uint8, shape (32, 32, 3), white background.
    caption : str
    spec : CaptionSpec
    masks : tuple[np.ndarray, ...]
        One boolean (32, 32) mask of visible pixels per object, in caption order.
    """

    image: np.ndarray
    caption: str
    spec: CaptionSpec
    masks: tuple[np.ndarray, ...]


def parse_caption(caption: str) -> CaptionSpec:
    """Parse a caption of the closed grammar into a :class:`CaptionSpec`.

    Raises
    ------
    ValueError
        If ``caption`` is not ``"a C S"`` or ``"a C S <relation> a C S"``.
    """
    words = caption.lower().split()
    if len(words) < 3 or words[0] != "a" or words[1] not in COLOURS or words[2] not in SHAPES:
        raise ValueError(f"caption {caption!r}: expected 'a <colour> <shape> [<relation> a <colour> <shape>]'")
    first = ObjectSpec(words[1], words[2])
    if len(words) == 3:
        return CaptionSpec((first,))
    rest = " ".join(words[3:])
    for relation in RELATIONS:
        if rest.startswith(relation + " "):
            tail = rest[len(relation) + 1 :].split()
            if len(tail) == 3 and tail[0] == "a" and tail[1] in COLOURS and tail[2] in SHAPES:
                return CaptionSpec((first, ObjectSpec(tail[1], tail[2])), relation)
    raise ValueError(f"caption {caption!r}: expected 'a <colour> <shape> [<relation> a <colour> <shape>]'")


def single_object_specs() -> list[CaptionSpec]:
    """All 12 one-object captions."""
    return [CaptionSpec((ObjectSpec(c, s),)) for c in COLOURS for s in SHAPES]


def two_object_specs() -> list[CaptionSpec]:
    """All two-object captions with two different colours (4*3*3*3*4 = 432)."""
    objects = [ObjectSpec(c, s) for c in COLOURS for s in SHAPES]
    return [
        CaptionSpec((a, b), r) for a, b in itertools.permutations(objects, 2) if a.colour != b.colour for r in RELATIONS
    ]


def _held_out() -> tuple[CaptionSpec, ...]:
    rng = np.random.default_rng(_HELD_OUT_SEED)
    held: list[CaptionSpec] = []
    # canonical phrasings ("left of" / "above") enumerate every scene exactly once per axis
    for canonical in ("to the left of", "above"):
        scenes = [s for s in two_object_specs() if s.relation == canonical]
        for i in rng.choice(len(scenes), size=_HELD_OUT_SCENES_PER_AXIS, replace=False):
            held += [scenes[i], scenes[i].mirrored()]
    return tuple(held)


#: 24 held-out two-object captions: 6 each of left / right / above / below.
HELD_OUT_SPECS: tuple[CaptionSpec, ...] = _held_out()
HELD_OUT_CAPTIONS: tuple[str, ...] = tuple(s.text for s in HELD_OUT_SPECS)
TRAIN_TWO_OBJECT_SPECS: tuple[CaptionSpec, ...] = tuple(s for s in two_object_specs() if s not in set(HELD_OUT_SPECS))


def _shape_mask(shape: str, cx: float, cy: float, size: float) -> np.ndarray:
    """Boolean 32x32 mask of a shape with centre (cx, cy) and bounding size ``size`` (pixels)."""
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32) + 0.5
    half = size / 2.0
    if shape == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= half**2
    if shape == "square":
        # a slightly smaller side than the circle's diameter so both have similar area
        h = half * 0.85
        return (np.abs(xx - cx) <= h) & (np.abs(yy - cy) <= h)
    if shape == "triangle":
        # upright isosceles triangle: apex at the top, base at the bottom of the bounding box
        top, bottom = cy - half, cy + half
        t = (yy - top) / size  # 0 at the apex, 1 at the base
        return (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= t * half)
    raise ValueError(f"shape {shape!r}: expected one of {SHAPES}")


def render_scene(spec: CaptionSpec, rng: np.random.Generator) -> Scene:
    """Render ``spec`` at a random size and position that satisfies its relation.

    Two-object layouts put the objects in opposite halves along the relation's axis (centres
    16 px apart on average) with an independent jitter on the other axis, so the relation holds by a
    wide margin and the objects do not overlap.
    """
    canvas = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 255, dtype=np.uint8)
    if spec.relation is None:
        size = rng.uniform(10.0, 16.0)
        lo, hi = size / 2 + 1, IMAGE_SIZE - size / 2 - 1
        centres = [(rng.uniform(lo, hi), rng.uniform(lo, hi))]
        sizes = [size]
    else:
        axis, sign = RELATIONS[spec.relation]
        sizes = [rng.uniform(8.0, 12.0), rng.uniform(8.0, 12.0)]
        near, far = rng.uniform(6.5, 10.0), rng.uniform(22.0, 25.5)
        along = (near, far) if sign < 0 else (far, near)
        across = [rng.uniform(8.0, 24.0)]
        across.append(float(np.clip(across[0] + rng.uniform(-5.0, 5.0), 7.0, 25.0)))
        centres = [(along[i], across[i]) if axis == 0 else (across[i], along[i]) for i in range(2)]
    masks = []
    for obj, (cx, cy), size in zip(spec.objects, centres, sizes):
        m = _shape_mask(obj.shape, cx, cy, size)
        for earlier in masks:  # later objects occlude earlier ones
            earlier &= ~m
        masks.append(m)
        canvas[m] = COLOURS[obj.colour]
    return Scene(canvas, spec.text, spec, tuple(masks))


def sample_training_spec(rng: np.random.Generator, p_single: float = 0.25) -> CaptionSpec:
    """Draw a training caption: one object with probability ``p_single``, else a non-held-out pair."""
    if rng.random() < p_single:
        singles = single_object_specs()
        return singles[rng.integers(len(singles))]
    return TRAIN_TWO_OBJECT_SPECS[rng.integers(len(TRAIN_TWO_OBJECT_SPECS))]


def training_scenes(rng: np.random.Generator, batch_size: int, p_single: float = 0.25) -> list[Scene]:
    """``batch_size`` rendered training scenes (images, captions and per-object masks)."""
    return [render_scene(sample_training_spec(rng, p_single), rng) for _ in range(batch_size)]


def training_batch(rng: np.random.Generator, batch_size: int, p_single: float = 0.25) -> tuple[np.ndarray, list[str]]:
    """A batch of training scenes: uint8 images (B, 32, 32, 3) and their captions."""
    scenes = training_scenes(rng, batch_size, p_single)
    return np.stack([s.image for s in scenes]), [s.caption for s in scenes]


def word_token_positions(spec: CaptionSpec) -> list[dict[str, int]]:
    """Token positions of each object's colour and shape words, in object order, for a tokenizer that puts
    [CLS] at position 0 and one token per word after it ("a C S": C at word s+1 -> token s+2)."""
    words = spec.text.split()
    starts = [0] if spec.relation is None else [0, len(words) - 3]
    return [{"colour": s + 2, "shape": s + 3} for s in starts]
