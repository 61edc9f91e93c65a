"""Classifier saliency: a registry of methods and one verb, :func:`explain`.

>>> from glimpse.images import sample_images
>>> from glimpse.saliency import explain, map_units, top1
>>> from models.registry import load_classifier  # the embedded EfficientNet-Lite0; any classifier bundle will do
>>> bundle, image = load_classifier(), sample_images()["chelsea"]
>>> bundle.labels[top1(bundle, image)]  # explained when no target is given
'Egyptian cat'
>>> maps = explain(bundle, image, ["gradient", "gradcam"])  # one forward and one backward pass for both
>>> [(m.method, m.values.shape, map_units(m)) for m in maps]
[('gradient', (224, 224), '∂S/∂x'), ('gradcam', (224, 224), 'ΔS per layer cell @ head_act')]

Before computing, :func:`estimate_cost` says what a panel will push through the model and, with
:func:`measure_pass_time`, how long that takes here; :func:`map_units` says what a map's values measure (maps in
equal units may share a colour scale).

The modules, each importing only those above it in this list (``tests/test_import_graph.py``):

- ``base``: plain values (:class:`MethodInfo`, :class:`Cost`, :class:`Target`, :class:`SaliencyMap`);
  ``npz``: the one file format of saliency maps;
- ``contract``: what a method receives and returns (``Method``, ``Context``, ``Pass``, ``ScoreModel``, hooks);
  ``layers``: a layer's activations for one image; ``batching``: the batch size measured on this device;
- ``methods/``: one file per method family, with the formulas and citations;
- ``registry``: one line per method;
- ``targets``: the top-1 class (:func:`top1`) and targets from class names;
- ``panel``: a list of methods checked and grouped as :func:`explain` runs them, and their units;
- ``engine``: :func:`explain` (shared passes, the noise tunnel); ``cost``: :func:`estimate_cost`.
"""

from glimpse.saliency.base import Cost, MethodInfo, SaliencyMap, Target
from glimpse.saliency.cost import GroupCost, PanelCost, PassTime, estimate_cost, measure_pass_time
from glimpse.saliency.engine import explain
from glimpse.saliency.panel import map_units, method_units
from glimpse.saliency.registry import REGISTRY, SHARED, get_method, list_methods
from glimpse.saliency.targets import make_target, target_label, top1

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
    "top1",
]
