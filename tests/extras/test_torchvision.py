"""The ``torchvision:`` loader and the CAM and gradient methods on a real torchvision CNN (issue 27), offline.

``torchvision:resnet18`` loads ``ResNet18_Weights.DEFAULT`` through torch's hub cache, which it reads before any
download: a seeded ``resnet18(weights=None)`` written there under the weights' file name is what the loader finds,
so the id goes through the real path (the weights' transforms, categories, the layer discovery) with no network.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.extras.support import need

tv = need("torchvision")

from glimpse.saliency import explain, list_methods  # noqa: E402
from models.registry import ModelLoadError, load_classifier  # noqa: E402
from tests.tiny_models import FAST_PARAMS  # noqa: E402

#: every CAM and gradient method in the registry, with the tests' fast settings; at ResNet's 224×224 and 512
#: channels, Score-CAM on a few channels and Integrated Gradients at fixed steps (the adaptive rule takes up to 400)
METHODS = [m.name for m in list_methods() if m.family in ("cam", "gradient")]
PARAMS = {**FAST_PARAMS, "scorecam": {"channels": 8}, "integrated_gradients": {"steps": 8, "rule": "gausslegendre"}}


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """(the torchvision module, its bundle loaded as ``torchvision:resnet18`` from a cache of its own)."""
    weights = tv.models.ResNet18_Weights.DEFAULT
    home = tmp_path_factory.mktemp("torch_home")
    checkpoint = home / "hub" / "checkpoints" / Path(urlparse(weights.url).path).name
    checkpoint.parent.mkdir(parents=True)
    torch.manual_seed(0)
    net = tv.models.resnet18(weights=None).eval()
    torch.save(net.state_dict(), checkpoint)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(home))
        bundle = load_classifier("torchvision:resnet18", device="cpu")
    return net, bundle


def _image(seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).uniform(size=(200, 240, 3)) * 255).astype(np.uint8)


def test_resnet18_loads_from_the_cache_with_its_weights_metadata(resnet):
    net, bundle = resnet
    weights = tv.models.ResNet18_Weights.DEFAULT
    assert bundle.kind == "cnn" and bundle.token_grid is None
    assert bundle.labels == tuple(weights.meta["categories"]) and len(bundle.labels) == 1000
    assert bundle.input_size == (224, 224)
    assert bundle.mean == pytest.approx((0.485, 0.456, 0.406)) and bundle.std == pytest.approx((0.229, 0.224, 0.225))
    assert bundle.target_layers[0] == "layer4"  # the deepest 7×7 stage, Grad-CAM's usual choice
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(bundle.model(x), net(x))


def test_an_unknown_torchvision_name_says_so():
    with pytest.raises(ModelLoadError, match="unknown torchvision classifier 'no_such_net'"):
        load_classifier("torchvision:no_such_net", device="cpu")


def test_every_cam_and_gradient_method_gives_a_finite_map(resnet):
    _, bundle = resnet
    panel = [(name, PARAMS.get(name, {})) for name in METHODS]
    maps = explain(bundle, _image(), panel, target=7, batch_size=8)  # no batch-size measurement at 224 px
    assert [m.method for m in maps] == METHODS
    for m in maps:
        assert m.values.shape == (224, 224) and np.isfinite(m.values).all(), m.method
        assert np.abs(m.values).max() > 0, m.method
    assert not any(mod._forward_hooks or mod._backward_hooks for mod in bundle.model.modules())


def test_gradcam_and_the_gradient_equal_a_direct_computation(resnet):
    """Grad-CAM at ``layer4`` by hand on the module torchvision built: w_k = mean ∂S/∂A_k, ReLU(Σ w_k A_k),
    upsampled bilinearly; the gradient is Σ_channels ∂S/∂x."""
    net, bundle = resnet
    image = _image(1)
    gradcam, gradient = explain(bundle, image, ["gradcam", "gradient"], target=7, batch_size=8)
    x = bundle.preprocess(image).requires_grad_(True)
    acts = {}
    handle = net.layer4.register_forward_hook(lambda _m, _i, out: acts.setdefault("a", out))
    try:
        score = net(x)[0, 7]
    finally:
        handle.remove()
    ga, gx = torch.autograd.grad(score, [acts["a"], x])
    cam = torch.relu((ga.mean((2, 3), keepdim=True) * acts["a"]).sum(1, keepdim=True))
    want = F.interpolate(cam, size=(224, 224), mode="bilinear", align_corners=False)[0, 0].detach().numpy()
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(gradcam.values / scale, want / scale, rtol=0, atol=1e-4)
    assert gradient.layer is None
    g = gx[0].detach().numpy().sum(0)  # the gradient map sums the colour channels
    np.testing.assert_allclose(gradient.values, g, rtol=1e-4, atol=1e-6 * float(np.abs(g).max()))


def test_deeplift_runs_on_resnets_shared_in_place_relus_with_its_completeness(resnet):
    """torchvision's BasicBlock calls one in-place ``self.relu`` twice; Captum's DeepLIFT refused that ("being used
    more than once in the network"). It now runs on a copy with a ReLU per site, and the shared model is left as
    it was. Its completeness gap is a few per cent, not ~0: Captum's max-pool rule (the stem's MaxPool2d) is
    approximate, as the next test shows."""
    net, bundle = resnet
    (m,) = explain(bundle, _image(2), ["deeplift"], target=7, batch_size=8)
    assert np.isfinite(m.values).all() and m.completeness_gap is not None and m.completeness_gap < 0.1
    relus = [mod for mod in bundle.model.modules() if isinstance(mod, torch.nn.ReLU)]
    assert len(relus) == 9 and all(r.inplace for r in relus)  # the stem's and one per block, untouched
    assert not any(mod._forward_hooks or mod._backward_hooks for mod in bundle.model.modules())


def test_the_per_site_copy_keeps_deeplifts_summation_to_delta():
    """The same network with its stem's max pool made an average pool (a linear layer, no approximate rule): the
    per-site copy computes the network's function, and DeepLIFT's attributions add up to S(x) − S(x')."""
    from captum.attr import DeepLift

    from glimpse.saliency.methods._common import quiet_captum
    from glimpse.saliency.methods.sites import per_site

    torch.manual_seed(0)
    net = tv.models.resnet18(weights=None).eval().requires_grad_(False)
    net.maxpool = torch.nn.AvgPool2d(3, 2, 1)
    split = per_site(net)
    assert split is not net and per_site(net) is split  # split once, remembered
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    base = torch.zeros_like(x)
    with torch.no_grad():
        torch.testing.assert_close(split(x), net(x))
        delta = float(net(x)[0, 7] - net(base)[0, 7])
    with quiet_captum():
        attr = DeepLift(split).attribute(x, baselines=base, target=7).detach()
        assert float(attr.sum()) == pytest.approx(delta, rel=1e-4)
        with pytest.raises(RuntimeError, match="used more than once"):  # what the shared ReLUs gave before
            DeepLift(net).attribute(x, baselines=base, target=7)
