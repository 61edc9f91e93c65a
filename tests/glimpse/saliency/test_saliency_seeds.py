"""Every method, every categorical option, with and without a noise tunnel: the same seed gives the same map
bit for bit, a method that draws changes with the seed (and one that does not, does not), and no global
generator (torch's, NumPy's, Python's ``random``) is read or moved — also with explanations in threads.

Cases are discovered from the registry, so a new method or option that samples is covered without edits."""

from __future__ import annotations

import numpy as np
import pytest

from glimpse.saliency import REGISTRY, explain
from glimpse.saliency.engine import sample_seed
from tests.probes import beside_a_drawing_caller, global_rng_state
from tests.tiny_models import FAST_PARAMS, cnn_bundle, for_method, image, param_variants

TUNNEL = {"samples": 2, "noise": 0.1}
#: FAST_PARAMS with the adaptive IG refinement capped (its default budget is 400 nodes).
PARAMS = {**FAST_PARAMS, "integrated_gradients": {**FAST_PARAMS["integrated_gradients"], "max_steps": 8}}


def variants(name: str) -> list[dict]:
    """The method's fast parameters, then each other value of each categorical parameter, one at a time."""
    return param_variants(name, PARAMS)


def full(name: str, params: dict) -> dict:
    return {**REGISTRY[name].info.params, **params}


def cases():
    """Each variant without a noise tunnel; the method's first variant also under one, where it takes one."""
    for name, method in REGISTRY.items():
        for i, params in enumerate(variants(name)):
            label = "-".join(f"{k}={v}" for k, v in params.items() if k in method.info.choices)
            tunnels = [False] + ([True] if i == 0 and method.own_noise_tunnel(full(name, params)) is None else [])
            for tunnel in tunnels:
                yield pytest.param(name, params, tunnel, id="-".join(filter(None, [name, label, tunnel and "tunnel"])))


@pytest.fixture(scope="module")
def cnn():
    return cnn_bundle()


@pytest.mark.parametrize(("name", "params", "tunnel"), list(cases()))
def test_same_seed_same_map_and_no_global_generator_moves(cnn, name, params, tunnel):
    method = REGISTRY[name]
    img = image()

    def run(seed: int, img: np.ndarray = img, tunnel: bool = tunnel) -> np.ndarray:
        (m,) = explain(for_method(name, cnn), img, [(name, params)], target=1, seed=seed,
                       noise_tunnel=TUNNEL if tunnel else None)  # fmt: skip
        return m.values

    before = global_rng_state()
    first = run(5)
    assert global_rng_state() == before, "explain moved a global generator"
    np.testing.assert_array_equal(run(5), first)  # bit-identical
    other = run(6)
    own = method.uses_seed(full(name, params))
    assert method.info.stochastic or not own, "uses_seed without stochastic=True"
    if own:
        assert not np.array_equal(other, first), "the seed does not reach the method's draws"
    elif not tunnel:
        np.testing.assert_array_equal(other, first)  # declared seed-free, and it is
    elif not np.array_equal(run(5, image(seed=1), False), run(5, img, False)):
        # The tunnel's noise can only show in a map that depends on the input (DeconvNet's does not on a
        # network without max-pooling: its backward pass never looks at the activations).
        assert not np.array_equal(other, first), "the seed does not reach the noise tunnel"
    assert global_rng_state() == before


def seeded_panel() -> list[tuple[str, dict]]:
    """Every method that can draw, each with a setting in which it does."""
    panel = []
    for name, method in REGISTRY.items():
        drawing = [p for p in variants(name) if method.uses_seed(full(name, p))]
        if drawing:
            panel.append((name, drawing[0]))
    return panel


def test_concurrent_explanations_match_serial_runs():
    panel = seeded_panel()
    assert {"gradient_shap", "smoothgrad", "rise", "lime", "kernel_shap", "integrated_gradients"} <= {
        n for n, _ in panel
    }
    img = image()
    bundles = [cnn_bundle(), cnn_bundle()]  # separate models and locks: the two explanations really overlap
    seeds = [11, 12]

    def run(bundle, seed):
        plain = explain(bundle, img, panel, target=1, seed=seed)
        noisy = explain(bundle, img, ["gradcam", "occlusion"], target=1, seed=seed, noise_tunnel=TUNNEL)
        return [m.values for m in plain + noisy]

    serial = [run(b, s) for b, s in zip(bundles, seeds)]
    # a caller seeding and drawing from the global generators meanwhile gets exactly what its seeds give
    results = beside_a_drawing_caller([lambda i=i: [run(bundles[i], seeds[i]) for _ in range(2)] for i in range(2)])
    for i in range(2):
        for repeat in results[i]:
            for got, want in zip(repeat, serial[i], strict=True):
                np.testing.assert_array_equal(got, want)
    assert not np.array_equal(serial[0][0], serial[1][0])  # different seeds, different maps


@pytest.mark.parametrize(
    "name", [n for n, m in REGISTRY.items() if m.info.stochastic and not m.own_noise_tunnel(full(n, PARAMS.get(n, {})))]
)
def test_a_noise_tunnel_over_a_sampling_method_is_independent_of_the_batch_size(cnn, name):
    """Each noisy copy seeds the method's draws from its own index, not from its position in a batch."""
    params = dict(PARAMS.get(name, {}))
    if "baseline" in REGISTRY[name].info.params and name != "gradient_shap":
        params["baseline"] = "uniform"  # IG / DeepLIFT sample only with a uniform baseline
    tunnel = {"samples": 3, "noise": 0.1}
    maps = [
        explain(cnn, image(), [(name, params)], target=1, seed=2, noise_tunnel=tunnel, batch_size=bs)[0].values
        for bs in (1, 2, 16)
    ]
    # equal up to float rounding (the method's own batches change with batch_size); with copies seeded by
    # their place in a batch, batch sizes 1 and 2 gave different draws and maps
    scale = float(np.abs(maps[0]).max())
    np.testing.assert_allclose(maps[1], maps[0], rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(maps[2], maps[0], rtol=1e-4, atol=1e-5 * scale)


def test_noisy_copies_of_a_sampling_method_do_not_share_draws():
    seeds = {sample_seed(5, i) for i in range(100)}
    assert len(seeds) == 100 and all(0 <= s < 2**63 for s in seeds)
    assert sample_seed(5, 0) == sample_seed(5, 0) != sample_seed(6, 0)


def test_smoothgrad_lists_its_samples_once(cnn):
    (m,) = explain(cnn, image(), [("smoothgrad", {"samples": 2})], target=1)
    assert not any(k.startswith("noise_tunnel") for k, _ in m.params)  # its tunnel is its own parameters
    assert m.noise_tunnel is None and dict(m.params)["samples"] == 2
    (g,) = explain(cnn, image(), ["gradient"], target=1, noise_tunnel=TUNNEL)
    assert dict(g.noise_tunnel)["samples"] == 2 and g.params == ()  # params: the method's own only
