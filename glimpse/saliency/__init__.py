"""Classifier saliency: a registry of methods and one verb, :func:`explain`.

>>> from glimpse.saliency import explain, list_methods            # doctest: +SKIP
>>> maps = explain(bundle, image, ["gradient", "gradcam", "integrated_gradients"])  # doctest: +SKIP

Before computing, :func:`estimate_cost` says what a panel will push through the model and, with
:func:`measure_pass_time`, how long that takes here; :func:`map_units` says what a map's values measure (maps in
equal units may share a colour scale).

See ``engine`` for how passes are shared and ``methods/`` for the formulas and citations.
"""

from glimpse.saliency.base import Cost, MethodInfo, SaliencyMap, Target
from glimpse.saliency.engine import (
    GroupCost,
    PanelCost,
    PassTime,
    estimate_cost,
    explain,
    make_target,
    map_units,
    measure_pass_time,
    method_units,
    target_label,
)
from glimpse.saliency.registry import REGISTRY, SHARED, get_method, list_methods

__all__ = [
    "Cost",
    "GroupCost",
    "PanelCost",
    "PassTime",
    "MethodInfo",
    "SaliencyMap",
    "Target",
    "REGISTRY",
    "SHARED",
    "estimate_cost",
    "explain",
    "get_method",
    "list_methods",
    "make_target",
    "map_units",
    "measure_pass_time",
    "method_units",
    "target_label",
]
