"""The method registry: one line per method. The UI, the CLI and the tests iterate over it."""

from __future__ import annotations

from glimpse.saliency.base import MethodInfo
from glimpse.saliency.contract import Method
from glimpse.saliency.methods.attnlrp import AttnLRP
from glimpse.saliency.methods.backprop_rules import DeconvNet, GuidedBackprop
from glimpse.saliency.methods.cam import GradCAM, GradCAMpp, HiResCAM, LayerCAM, XGradCAM
from glimpse.saliency.methods.chefer import Chefer
from glimpse.saliency.methods.chefer_lrp import CheferLRP
from glimpse.saliency.methods.deeplift import DeepLift
from glimpse.saliency.methods.eigencam import EigenCAM
from glimpse.saliency.methods.gradient import Gradient, GradientAbs, InputXGradient, SmoothGrad
from glimpse.saliency.methods.gradient_shap import GradientShap
from glimpse.saliency.methods.integrated_gradients import IntegratedGradients
from glimpse.saliency.methods.legrad import LeGrad
from glimpse.saliency.methods.normgrad import NormGrad, NormGradMultilayer, NormGradSelective
from glimpse.saliency.methods.occlusion import Occlusion
from glimpse.saliency.methods.rise import Rise
from glimpse.saliency.methods.rollout import AttentionRollout
from glimpse.saliency.methods.scorecam import ScoreCAM
from glimpse.saliency.methods.smooth_gradcampp import SmoothGradCAMpp
from glimpse.saliency.methods.surrogate import KernelShap, Lime

_METHODS: list[type[Method]] = [
    Gradient,
    GradientAbs,
    InputXGradient,
    IntegratedGradients,
    GuidedBackprop,
    DeconvNet,
    DeepLift,
    GradientShap,
    SmoothGrad,
    GradCAM,
    HiResCAM,
    XGradCAM,
    LayerCAM,
    GradCAMpp,
    SmoothGradCAMpp,
    ScoreCAM,
    EigenCAM,
    NormGrad,
    NormGradSelective,
    NormGradMultilayer,
    Occlusion,
    Rise,
    Lime,
    KernelShap,
    AttentionRollout,
    Chefer,
    CheferLRP,
    LeGrad,
    AttnLRP,
]

#: name -> method instance (stateless).
REGISTRY: dict[str, Method] = {cls.info.name: cls() for cls in _METHODS}

#: Methods answered by the one shared forward+backward pass.
SHARED = tuple(name for name, m in REGISTRY.items() if m.shared and m.own_noise_tunnel(m.info.params) is None)


def list_methods() -> list[MethodInfo]:
    """Every registered method's description, in registry order."""
    return [m.info for m in REGISTRY.values()]


def get_method(name: str) -> MethodInfo:
    """The description of method ``name``; ValueError listing the known names otherwise."""
    try:
        return REGISTRY[name].info
    except KeyError:
        raise ValueError(f"method: unknown {name!r}; known: {', '.join(REGISTRY)}") from None
