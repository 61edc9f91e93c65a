"""Hard negatives for a prompt: the same words, one composition changed.

For prompts of the form ``"a <colour> <shape> [<relation> a <colour> <shape>]"`` (the shapes grammar, and
any prompt whose colour, shape and relation words are in the lists below):

- ``colours swapped``: the two objects exchange colours ("a red circle … a blue square" → "a blue circle …
  a red square");
- ``shapes swapped``: they exchange shapes;
- ``relation flipped``: left ↔ right, above ↔ below;
- ``object dropped``: only the first object (and, as a second negative, only the second);
- for one object: every other colour with the same shape, and every other shape with the same colour.

>>> for kind, text in hard_negatives("a red circle to the left of a blue square"):
...     print(f"{kind}: {text}")
colours swapped: a blue circle to the left of a red square
shapes swapped: a red square to the left of a blue circle
relation flipped: a red circle to the right of a blue square
object dropped: a red circle
object dropped: a blue square
"""

from __future__ import annotations

import re

COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white", "grey", "gray")
SHAPES = ("circle", "square", "triangle", "cube", "sphere", "cylinder", "star", "rectangle", "cone")
#: each relation phrase and its flip
RELATIONS = {
    "to the left of": "to the right of",
    "to the right of": "to the left of",
    "left of": "right of",
    "right of": "left of",
    "above": "below",
    "below": "above",
    "on top of": "under",
    "under": "on top of",
}

_OBJECT = r"(?:a|an|the)\s+(\w+)\s+(\w+)"


def parse(prompt: str) -> tuple[tuple[tuple[str, str], ...], str | None] | None:
    """``((colour, shape), …), relation`` of a prompt in the grammar, or None.

    >>> parse("A green triangle.")
    ((('green', 'triangle'),), None)
    >>> parse("a red circle above a blue square")
    ((('red', 'circle'), ('blue', 'square')), 'above')
    """
    text = " ".join(re.sub(r"[^\w\s]", " ", prompt.lower()).split())
    one = re.fullmatch(_OBJECT, text)
    if one and one[1] in COLOURS and one[2] in SHAPES:
        return ((one[1], one[2]),), None
    for relation in sorted(RELATIONS, key=len, reverse=True):
        two = re.fullmatch(f"{_OBJECT} {relation} {_OBJECT}", text)
        if two and two[1] in COLOURS and two[3] in COLOURS and two[2] in SHAPES and two[4] in SHAPES:
            return ((two[1], two[2]), (two[3], two[4])), relation
    return None


def _text(objects: tuple[tuple[str, str], ...], relation: str | None) -> str:
    first = f"a {objects[0][0]} {objects[0][1]}"
    return first if relation is None else f"{first} {relation} a {objects[1][0]} {objects[1][1]}"


def hard_negatives(
    prompt: str, *, colours: tuple[str, ...] | None = None, shapes: tuple[str, ...] | None = None
) -> list[tuple[str, str]]:
    """``(kind, prompt)`` pairs (module docstring), without repeats and without the prompt itself; empty when
    the prompt is not in the grammar. ``colours`` and ``shapes``: what a one-object prompt's colour and shape
    are changed to (default: the embedded model's red, green, blue, yellow and circle, square, triangle)."""
    parsed = parse(prompt)
    if parsed is None:
        return []
    objects, relation = parsed
    out: list[tuple[str, str]] = []
    if relation is None:
        (colour, shape) = objects[0]
        out += [("colour changed", _text(((c, shape),), None)) for c in (colours or COLOURS[:4]) if c != colour]
        out += [("shape changed", _text(((colour, s),), None)) for s in (shapes or SHAPES[:3]) if s != shape]
    else:
        (c1, s1), (c2, s2) = objects
        out.append(("colours swapped", _text(((c2, s1), (c1, s2)), relation)))
        out.append(("shapes swapped", _text(((c1, s2), (c2, s1)), relation)))
        out.append(("relation flipped", _text(objects, RELATIONS[relation])))
        out.append(("object dropped", _text((objects[0],), None)))
        out.append(("object dropped", _text((objects[1],), None)))
    original = _text(objects, relation)
    seen, unique = {original}, []
    for kind, text in out:
        if text not in seen:
            seen.add(text)
            unique.append((kind, text))
    return unique


def expand_template(
    template: str, *, colours: tuple[str, ...] | None = None, shapes: tuple[str, ...] | None = None
) -> list[str]:
    """Every prompt of a template with ``{colour}`` and/or ``{shape}`` slots (default words: the embedded
    model's). ValueError for a template with no slot or an unknown one.

    >>> expand_template("a {colour} circle", colours=("red", "blue"))
    ['a red circle', 'a blue circle']
    >>> len(expand_template("a {colour} {shape}"))
    12
    """
    import itertools
    import string

    slots = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    if not slots or not slots <= {"colour", "shape"}:
        raise ValueError(
            f"template {template!r}: use the slots {{colour}} and/or {{shape}}, e.g. 'a {{colour}} {{shape}}'"
        )
    words = {"colour": colours or COLOURS[:4], "shape": shapes or SHAPES[:3]}
    names = sorted(slots)
    return [template.format(**dict(zip(names, combo))) for combo in itertools.product(*(words[n] for n in names))]
