"""Cascading randomisation on a tiny CNN: identity at stage 0, decorrelation after, shared model intact."""

import numpy as np
import torch

from glimpse.evaluation import cascade, parameter_units, randomisation_check
from tests.tiny_models import CascadeCNN, cascade_bundle, noise_image


def gradient_map(bundle, image, target):
    """|∂S_c/∂x| summed over channels: the plain gradient, computed directly."""
    x = bundle.preprocess(image).requires_grad_(True)
    with bundle.lock:
        bundle.model(x)[0, target].backward()
    return x.grad[0].sum(0).numpy()


def test_cascade_is_top_down_and_cumulative():
    model = CascadeCNN()
    assert parameter_units(model) == ["stem", "blocks.0", "blocks.1", "fc"]
    plan = cascade(model, 3)
    assert plan[0] == ["fc"] and plan[-1] == ["fc", "blocks.1", "blocks.0", "stem"]
    assert all(a == b[: len(a)] for a, b in zip(plan, plan[1:]))


def test_gradient_decorrelates_and_shared_model_untouched():
    bundle = cascade_bundle()
    before = {k: v.clone() for k, v in bundle.model.state_dict().items()}
    rng_state = torch.get_rng_state()
    res = randomisation_check(bundle, noise_image(24), "gradient", target=1, stages=4, map_fn=gradient_map)
    assert res.stages[0] == "trained" and res.stages[1] == "fc" and len(res.stages) == 5
    assert res.spearman[0] == 1.0 and res.ssim[0] == 1.0
    # The first stage's map is recomputed on an untouched copy: it must equal the trained map.
    assert np.allclose(res.maps[0], gradient_map(bundle, noise_image(24), 1))
    assert res.spearman[-1] < 0.6
    assert np.nanmin(res.spearman[1:]) < 0.9
    after = bundle.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert not any(p.requires_grad for p in bundle.model.parameters())


def test_same_seed_same_cascade():
    a = randomisation_check(
        cascade_bundle(), noise_image(24), "gradient", target=0, stages=2, seed=5, map_fn=gradient_map
    )
    b = randomisation_check(
        cascade_bundle(), noise_image(24), "gradient", target=0, stages=2, seed=5, map_fn=gradient_map
    )
    assert np.array_equal(a.maps, b.maps)


def test_with_registry_gradient():
    res = randomisation_check(cascade_bundle(), noise_image(24), "gradient", target=0, stages=2)
    assert res.maps.shape[0] == 3 and res.spearman[0] == 1.0
    assert res.spearman[-1] < 0.9
