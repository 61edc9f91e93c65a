"""Cost before compute: :func:`estimate_cost` counts the images :func:`explain` pushes through the model.

Checked by counting them: a forward hook on the classifier adds up the images of every forward pass, and a
gradient hook on its output those that a backward pass goes through. Cases come from the registry (every
method, each of its categorical options, with and without a noise tunnel), so a new method is covered
without edits — and must declare its cost."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from glimpse.saliency import REGISTRY, explain
from glimpse.saliency.base import Cost, CostInput, MethodInfo
from glimpse.saliency.batching import batch_size_for
from glimpse.saliency.contract import Method
from glimpse.saliency.cost import GroupCost, PanelCost, PassTime, estimate_cost, measure_pass_time
from tests.probes import global_rng_state, hook_count
from tests.tiny_models import FAST_PARAMS, cnn_bundle, for_method, image, param_variants

#: Light noise, so that SLIC still splits each noisy copy into several superpixels (KernelSHAP skips its
#: coalitions for an image of one superpixel).
TUNNEL = {"samples": 3, "noise": 0.05}
#: FAST_PARAMS with the adaptive IG refinement capped at 40 nodes (its default budget is 400).
PARAMS = {**FAST_PARAMS, "integrated_gradients": {**FAST_PARAMS["integrated_gradients"], "max_steps": 40}}
#: Numeric settings that change a count in a way of their own.
MORE = {
    "integrated_gradients": [{"steps": 12, "tolerance": 0.0}, {"steps": 8, "max_steps": 4}],
    "gradient_shap": [{"samples": 3, "baselines": 3, "baseline": "black"}],
    "scorecam": [{"channels": 3}, {"channels": 100}],
    "occlusion": [{"window": 8, "stride": 5}, {"window": 32, "stride": 16}],
    "rise": [{"masks": 5, "grid": 3}],
}


class ImageCounter:
    """Counts images through ``model`` while active: all of them, and those a backward pass went through."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.seen = 0
        self.backward = 0

    def _hook(self, module, inputs, output) -> None:
        self.seen += int(inputs[0].shape[0])
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(self._count_backward)

    def _count_backward(self, grad: torch.Tensor) -> None:
        self.backward += int(grad.shape[0])

    @property
    def forward_only(self) -> int:
        return self.seen - self.backward

    def __enter__(self) -> ImageCounter:
        self.handle = self.model.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


def variants(name: str) -> list[dict]:
    """The method's fast parameters, then each other value of each categorical parameter, then MORE."""
    return param_variants(name, PARAMS, MORE)


def cases():
    for name in REGISTRY:
        for i, params in enumerate(variants(name)):
            label = "-".join(f"{k}={v}" for k, v in params.items() if k in REGISTRY[name].info.choices or i > 0)
            for tunnel in (False, True) if i == 0 else (False,):
                yield pytest.param(name, params, tunnel, id="-".join(filter(None, [name, label, tunnel and "tunnel"])))


@pytest.fixture(scope="module")
def cnn():
    bundle = cnn_bundle()
    batch_size_for(bundle)  # measured once per model and device: not part of any explanation's count
    return bundle


def run_counted(bundle, methods, **kw):
    with ImageCounter(bundle.model) as counter:
        maps = explain(bundle, image(), methods, target=1, **kw)
    return counter, maps


def assert_within(cost: Cost, counter: ImageCounter) -> None:
    (most_f, most_b) = cost.most
    assert cost.forward <= counter.forward_only <= most_f, "forward-only images"
    assert cost.backward <= counter.backward <= most_b, "forward+backward images"


@pytest.mark.parametrize(("name", "params", "tunnel"), list(cases()))
def test_estimate_counts_the_images_explain_runs(cnn, name, params, tunnel):
    nt = TUNNEL if tunnel else None
    bundle = for_method(name, cnn)
    batch_size_for(bundle)  # measured once per model: not part of the count
    estimate = estimate_cost(bundle, [(name, params)], noise_tunnel=nt)
    assert estimate.unknown == (), f"{name} does not declare its cost (override Method.cost)"
    assert estimate.methods == (name,)
    counter, (m,) = run_counted(bundle, [(name, params)], noise_tunnel=nt)
    cost = estimate.total
    assert_within(cost, counter)
    if not cost.adaptive:
        assert (counter.forward_only, counter.backward) == (cost.forward, cost.backward)
    if m.steps_used is not None:  # the adaptive rule reports the nodes it spent: one image each
        assert counter.backward == m.steps_used


def test_the_adaptive_rule_is_counted_within_its_range(cnn):
    """IG's adaptive rule spends between ``steps`` and ``max_steps`` nodes: a case that refines, counted."""
    params = {"steps": 8, "max_steps": 40, "tolerance": 1e-6}
    cost = estimate_cost(cnn, [("integrated_gradients", params)]).total
    assert (cost.backward, cost.most[1]) == (8, 40) and cost.adaptive
    counter, (m,) = run_counted(cnn, [("integrated_gradients", params)])
    assert 8 < counter.backward == m.steps_used <= 40


def test_every_method_declares_its_cost(cnn):
    where = CostInput(input_size=cnn.input_size, layer="act2", layer_channels=lambda: 8)
    for name, method in REGISTRY.items():
        cost = method.cost(dict(method.info.params), where)
        assert isinstance(cost, Cost), f"{name}: override Method.cost (images through the model per image)"
        assert cost.forward + cost.backward > 0, name


def test_a_panel_of_shared_methods_pays_one_pass(cnn):
    panel = ["gradient", "gradcam", "gradcampp"]
    estimate = estimate_cost(cnn, panel)
    assert estimate.total == Cost(forward=0, backward=1)
    assert len(estimate.groups) == 1 and estimate.of("gradcampp").methods == tuple(panel)
    counter, _ = run_counted(cnn, panel)
    assert (counter.forward_only, counter.backward) == (0, 1)


def test_a_mixed_panel_under_a_noise_tunnel_mirrors_explains_grouping(cnn):
    """The global tunnel multiplies each group by its samples; SmoothGrad's own tunnel, equal to the global
    one, joins the shared pass; a sampling method runs its copies apart; the total is counted exactly."""
    panel = [
        "gradient",
        ("smoothgrad", {"samples": 3, "noise": 0.05}),
        "gradcam",
        ("rise", {"masks": 10, "grid": 3}),
        ("integrated_gradients", {"steps": 6, "tolerance": 0.0}),
        ("occlusion", {"window": 16, "stride": 16}),
    ]
    estimate = estimate_cost(cnn, panel, noise_tunnel=TUNNEL)
    assert estimate.of("smoothgrad") == GroupCost(("gradient", "smoothgrad", "gradcam"), Cost(0, 3), runs=1)
    assert estimate.of("rise") == GroupCost(("rise",), Cost(10, 0), runs=3)
    assert estimate.of("integrated_gradients").cost == Cost(0, 18)
    assert estimate.of("occlusion").cost == Cost(3 * 5, 0)
    assert estimate.total == Cost(forward=30 + 15, backward=3 + 18)
    counter, _ = run_counted(cnn, [m if isinstance(m, str) else (m[0], m[1]) for m in panel], noise_tunnel=TUNNEL)
    assert (counter.forward_only, counter.backward) == (45, 21)
    # a different tunnel of SmoothGrad's own is a pass of its own
    apart = estimate_cost(cnn, ["gradient", ("smoothgrad", {"samples": 4})], noise_tunnel=TUNNEL)
    assert [g.methods for g in apart.groups] == [("gradient",), ("smoothgrad",)]
    assert apart.total == Cost(0, 3 + 4)


def test_score_cam_reads_the_layers_channel_count(cnn):
    assert estimate_cost(cnn, [("scorecam", {"channels": 0})]).total == Cost(1 + 8, 0)  # act2: 8 channels
    assert estimate_cost(cnn, [("scorecam", {"channels": 0})], layer="act1").total == Cost(1 + 6, 0)
    assert estimate_cost(cnn, [("scorecam", {"channels": 5})], layer="act1").total == Cost(1 + 5, 0)
    with ImageCounter(cnn.model) as counter:  # given, it is not measured
        assert estimate_cost(cnn, ["scorecam"], layer_channels=300).total == Cost(1 + 128, 0)
        estimate_cost(cnn, ["gradcam", "occlusion"])  # no method asks: no probe
    assert counter.seen == 0
    with ImageCounter(cnn.model) as counter:
        estimate_cost(cnn, [("scorecam", {"channels": 3}), "eigencam"])
    assert counter.seen == 1 and hook_count(cnn.model) == 0
    with pytest.raises(ValueError, match="scorecam.channels must be >= 0"):
        estimate_cost(cnn, [("scorecam", {"channels": -1})])


def test_estimate_refuses_what_explain_refuses(cnn):
    with pytest.raises(ValueError, match="method: unknown 'nope'"):
        estimate_cost(cnn, ["nope"])
    with pytest.raises(ValueError, match="params: unknown parameter"):
        estimate_cost(cnn, [("occlusion", {"size": 3})])
    with pytest.raises(ValueError, match="occlusion.window must be in 1..32"):
        estimate_cost(cnn, [("occlusion", {"window": 64})])
    with pytest.raises(ValueError, match="layer: no module"):
        estimate_cost(cnn, ["gradcam"], layer="nope")
    with pytest.raises(ValueError, match="noise_tunnel: unknown kind"):
        estimate_cost(cnn, ["gradient"], noise_tunnel={"kind": "blur"})
    with pytest.raises(ValueError, match="listed twice"):
        estimate_cost(cnn, ["gradient", "gradient"])


class Undeclared(Method):
    info = MethodInfo(
        name="undeclared",
        label="Undeclared",
        family="perturbation",
        explanation="A method that does not say what it costs.\nFor the test.",
        citation="none",
    )

    def attribute(self, ctx, x, params):
        raise NotImplementedError


def test_an_undeclared_cost_is_reported_not_guessed(cnn, monkeypatch):
    monkeypatch.setitem(REGISTRY, "undeclared", Undeclared())
    estimate = estimate_cost(cnn, ["gradient", "undeclared", ("rise", {"masks": 7})])
    assert estimate.unknown == ("undeclared",)
    assert estimate.total == Cost(7, 1)  # the declared ones
    assert estimate.of("undeclared").cost is None
    pt = PassTime(forward_s=1.0, backward_s=2.0, single_forward_s=1.0, single_backward_s=2.0, batch_size=16)
    assert estimate.seconds(pt) == (9.0, 9.0)
    assert all(math.isnan(s) for s in estimate.of("undeclared").seconds(pt))


def test_seconds_follow_the_measured_pass_line():
    """A pass of m images costs (single − per) + m · per; n images run in ceil(n / batch) passes."""
    pt = PassTime(forward_s=1.0, backward_s=2.0, single_forward_s=5.0, single_backward_s=10.0, batch_size=4)
    assert pt.seconds(1, 0) == 5.0 and pt.seconds(0, 1) == 10.0  # one image alone: the batch-of-one time
    assert pt.seconds(4, 0) == 4.0 + 4 * 1.0  # one full batch
    assert pt.seconds(9, 3) == 3 * 4.0 + 9 * 1.0 + 1 * 8.0 + 3 * 2.0
    assert pt.seconds(0, 0) == 0.0
    adaptive = GroupCost(("integrated_gradients",), Cost(0, 4, backward_max=8))
    assert adaptive.seconds(pt) == (8.0 + 8.0, 2 * 8.0 + 16.0)
    apart = GroupCost(("rise",), Cost(4, 0), runs=3)  # each noisy copy runs its own passes
    assert apart.seconds(pt) == (3 * 8.0, 3 * 8.0) and apart.cost == Cost(12, 0)
    panel = PanelCost(groups=(adaptive, apart))
    assert panel.seconds(pt) == (16.0 + 24.0, 32.0 + 24.0)
    assert panel.total == Cost(12, 4, backward_max=8)


def test_costs_add_and_multiply_with_their_ranges():
    a, b = Cost(1, 2, backward_max=5), Cost(3, 4)
    assert a + b == Cost(4, 6, backward_max=9) and b + b == Cost(6, 8)
    assert a * 3 == Cost(3, 6, backward_max=15) == 3 * a
    assert a.most == (1, 5) and a.adaptive and not b.adaptive
    with pytest.raises(ValueError, match="cost: backward"):
        Cost(0, 5, backward_max=4)


def test_measure_pass_time_times_explains_passes_and_leaves_the_model_alone(cnn):
    before = global_rng_state()
    grad_mode = torch.is_grad_enabled()
    with ImageCounter(cnn.model) as counter:
        pt = measure_pass_time(cnn, batch_size=4, repeats=1)
    assert pt.batch_size == 4
    for value in (pt.forward_s, pt.backward_s, pt.single_forward_s, pt.single_backward_s):
        assert np.isfinite(value) and value > 0
    assert counter.seen == 1 + 4 + 4 + 1 + 1 and counter.backward == 1 + 4 + 1  # warm-up, then each once
    assert global_rng_state() == before and torch.is_grad_enabled() == grad_mode
    assert hook_count(cnn.model) == 0
    assert measure_pass_time(cnn, repeats=1).batch_size == batch_size_for(cnn)  # the engine's measured batch
    low, high = estimate_cost(cnn, ["gradient", ("rise", {"masks": 50})]).seconds(pt)
    assert 0 < low == high
    with pytest.raises(ValueError, match="repeats"):
        measure_pass_time(cnn, repeats=0)
