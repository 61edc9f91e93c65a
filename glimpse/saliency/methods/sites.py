"""One rectifier module per call site, for the methods that hook rectifiers (DeepLIFT, Guided Backprop, DeconvNet).

Captum gives each nonlinearity *module* its rule. A network that calls one module at several sites — torchvision's
ResNet calls each block's ``self.relu`` twice, in place — breaks that: DeepLIFT stores one input and output per
module and raises ("... being used more than once in the network"), and a backward rule on an in-place
rectifier sees a tensor it has overwritten. :func:`per_site` traces the network symbolically (``torch.fx``,
no forward pass) and, where a rectifier is shared or in place, returns a copy of the graph whose every rectifier
call is a module of its own, out of place. The copy holds the original's parameters (nothing is duplicated and
the shared model is not touched) and computes the same function.
"""

from __future__ import annotations

import logging
import weakref

from torch import fx, nn

log = logging.getLogger(__name__)

#: the rectifiers Captum's DeepLIFT, Guided Backprop and DeconvNet rules act on (and their subclasses)
RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softplus)

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def per_site(model: nn.Module) -> nn.Module:
    """``model`` itself when each rectifier module runs at one site and out of place (or when the network cannot be
    traced symbolically, e.g. Hugging Face models: then Captum's own check still speaks); else a
    ``torch.fx.GraphModule`` with one out-of-place rectifier per site. Remembered per model.

    >>> import torch
    >>> class Twice(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.lin, self.relu = nn.Linear(2, 2), nn.ReLU(inplace=True)
    ...     def forward(self, x):
    ...         return self.relu(self.lin(self.relu(x)))
    >>> net = Twice()
    >>> split = per_site(net)
    >>> [n for n, m in split.named_modules() if isinstance(m, nn.ReLU)], split.lin is net.lin
    (['relu', 'relu_site1'], True)
    >>> x = torch.randn(3, 2)
    >>> torch.equal(split(x), net(x.clone())), net.relu.inplace
    (True, True)
    """
    if model not in _CACHE:
        split = _split(model)
        _CACHE[model] = None if split is model else split  # None: as it is (the model as a value would pin its key)
    return _CACHE[model] or model


def _split(model: nn.Module) -> nn.Module:
    try:
        graph_module = fx.symbolic_trace(model)
    except Exception as err:  # torch.fx raises many kinds (TraceError, TypeError, ...): all mean "not traceable"
        log.debug("%s is not traceable by torch.fx (%s); rectifier sites left as they are", type(model).__name__, err)
        return model
    calls: dict[str, list[fx.Node]] = {}
    for node in graph_module.graph.nodes:
        if node.op == "call_module" and isinstance(graph_module.get_submodule(node.target), RECTIFIERS):
            calls.setdefault(node.target, []).append(node)
    shared = {t for t, nodes in calls.items() if len(nodes) > 1}
    in_place = {t for t in calls if getattr(graph_module.get_submodule(t), "inplace", False)}
    if not shared and not in_place:
        return model
    for target, nodes in calls.items():
        if target not in shared and target not in in_place:
            continue
        original = graph_module.get_submodule(target)
        for i, node in enumerate(nodes):
            site = _fresh(original)
            name = target if i == 0 else f"{target}_site{i}"
            graph_module.add_submodule(name, site)  # the first site replaces the shared module in the copy only
            node.target = name
    graph_module.recompile()
    log.debug("%s: rectifier sites split for %s", type(model).__name__, sorted(shared | in_place))
    return graph_module


def _fresh(rectifier: nn.Module) -> nn.Module:
    """A new module of the rectifier's type with its settings (``negative_slope``, ``approximate``, ...), out of place.

    Not ``copy.copy``: a shallow copy shares the original's hook dictionaries, so a hook Captum puts on one site
    would run at every site and on the shared model."""
    site = type(rectifier).__new__(type(rectifier))
    nn.Module.__init__(site)
    site.__dict__.update({k: v for k, v in vars(rectifier).items() if not k.startswith("_")})
    if hasattr(site, "inplace"):
        site.inplace = False
    site.train(rectifier.training)
    return site
