"""What is explained: a :class:`~glimpse.saliency.base.Target` from class names, and the target in words."""

from __future__ import annotations

from glimpse.saliency.base import Target


def make_target(bundle, query: str | int | None = None, contrast: str | int | None = None, *, image=None) -> Target:
    """A :class:`Target` from class names or indices (name search via ``bundle.label_index``).

    ``query`` None means the top-1 class of ``image`` (which is then required).
    """
    if query is None or (isinstance(query, str) and not query.strip()):
        if image is None:
            raise ValueError("target: give a class (name or index) or an image to take the top-1 class from")
        index = bundle.predict(image, top=1)[0][0]
    else:
        index = bundle.label_index(query)
    other = None
    if contrast is not None and not (isinstance(contrast, str) and not contrast.strip()):
        other = bundle.label_index(contrast)
    return Target(int(index), None if other is None else int(other))


def target_label(bundle, target: Target) -> str:
    """The explained score in words: the class name, or "a − b" for a contrast."""
    name = bundle.labels[target.index]
    if target.contrast is None:
        return name
    return f"{name} − {bundle.labels[target.contrast]}"
