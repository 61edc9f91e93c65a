"""Classifier saliency: a registry of methods and one verb, :func:`explain`.

>>> from glimpse.saliency import explain, list_methods            # doctest: +SKIP
>>> maps = explain(bundle, image, ["gradient", "gradcam", "integrated_gradients"])  # doctest: +SKIP

See ``engine`` for how passes are shared and ``methods/`` for the formulas and citations.
"""

from glimpse.saliency.base import MethodInfo, SaliencyMap, Target
from glimpse.saliency.engine import explain, make_target, target_label
from glimpse.saliency.registry import REGISTRY, SHARED, get_method, list_methods

__all__ = [
    "MethodInfo",
    "SaliencyMap",
    "Target",
    "REGISTRY",
    "SHARED",
    "explain",
    "get_method",
    "list_methods",
    "make_target",
    "target_label",
]
