"""Every registered method runs through explain() and returns a finite float32 map with its metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glimpse.saliency import REGISTRY, SHARED, SaliencyMap, Target, explain, get_method, list_methods
from tests.tiny_models import FAST_PARAMS, any_model_methods, cnn_bundle, image, vit_bundle

METHODS = [m.name for m in list_methods()]
CAMS = [m.name for m in list_methods() if m.family == "cam"]


@pytest.fixture(scope="module")
def cnn():
    return cnn_bundle()


@pytest.fixture(scope="module")
def vit():
    return vit_bundle()


def test_registry_lists_every_method_of_the_issue():
    # the issue's methods are all there; a new method is one file and one registry line, and every test that
    # means "all methods" reads the registry (METHODS, CAMS), so none needs editing for it
    expected = {
        "gradient", "gradient_abs", "input_x_gradient", "integrated_gradients", "guided_backprop", "deconvnet",
        "deeplift", "gradient_shap", "smoothgrad", "gradcam", "hirescam", "xgradcam", "layercam", "gradcampp",
        "smooth_gradcampp", "scorecam", "eigencam", "normgrad", "normgrad_selective", "normgrad_multilayer",
        "occlusion", "rise", "lime", "kernel_shap", "rollout", "chefer", "chefer_lrp", "legrad", "attnlrp",
    }  # fmt: skip
    assert set(METHODS) >= expected and METHODS == list(REGISTRY)
    for info in list_methods():
        assert info.family in ("gradient", "cam", "perturbation", "attention")
        assert info.models == ("vit" if info.family == "attention" else "any"), info.name
        assert info.needs_layer == (info.family == "cam")
        assert len(info.explanation.splitlines()) == 2, info.name
        assert info.citation and info.label
        json.dumps(info.params)
        for key, allowed in info.choices.items():
            assert info.params[key] in allowed
    assert set(SHARED) >= {"gradient", "input_x_gradient", "gradcam", "hirescam", "xgradcam", "layercam"}


def test_unknown_method_and_parameter_errors_name_the_parameter(cnn):
    with pytest.raises(ValueError, match=r"method: unknown 'nope'; known: gradient"):
        get_method("nope")
    with pytest.raises(ValueError, match="params: unknown parameter"):
        explain(cnn, image(), [("occlusion", {"size": 3})], target=0)
    with pytest.raises(ValueError, match="baseline must be one of"):
        explain(cnn, image(), [("integrated_gradients", {"baseline": "white"})], target=0)
    with pytest.raises(ValueError, match="layer: no module"):
        explain(cnn, image(), ["gradcam"], target=0, layer="nope")
    with pytest.raises(ValueError, match="noise_tunnel: unknown kind"):
        explain(cnn, image(), ["gradient"], target=0, noise_tunnel={"kind": "blur"})


@pytest.mark.parametrize("name", any_model_methods())
def test_every_method_runs_on_a_tiny_cnn(cnn, name):
    img = image()
    (m,) = explain(cnn, img, [(name, FAST_PARAMS.get(name, {}))], seed=3)
    assert isinstance(m, SaliencyMap)
    assert m.values.shape == (32, 32) and m.values.dtype == np.float32
    assert np.isfinite(m.values).all()
    assert np.abs(m.values).max() > 0, "an all-zero map explains nothing"
    assert m.method == name and m.model_id == "tiny-cnn" and m.seed == 3
    assert isinstance(m.target, Target) and m.target_label == cnn.labels[m.target.index]
    assert m.layer == ("act2" if REGISTRY[name].info.needs_layer else None)
    assert dict(m.params).keys() >= REGISTRY[name].info.params.keys()
    assert (m.completeness_gap is not None) == REGISTRY[name].info.has_completeness
    full = m.at_size(*img.shape[:2])
    assert full.shape == img.shape[:2] and full.dtype == np.float32


@pytest.mark.parametrize("name", CAMS)
def test_cam_methods_run_on_a_vit_token_grid(vit, name):
    (m,) = explain(vit, image(), [(name, FAST_PARAMS.get(name, {}))], target=1)
    assert m.values.shape == (32, 32) and np.isfinite(m.values).all()
    assert m.layer == "blocks.1"


def test_noise_tunnel_wraps_any_method_and_records_its_options(cnn):
    nt = {"kind": "vargrad", "samples": 3, "noise": 0.1}
    maps = explain(cnn, image(), ["gradcam", ("occlusion", FAST_PARAMS["occlusion"])], target=0, noise_tunnel=nt)
    for m in maps:
        assert m.noise_tunnel == (("kind", "vargrad"), ("noise", 0.1), ("samples", 3))  # sorted pairs: hashable
        assert not any(k.startswith("noise_tunnel") for k, _ in m.params)  # params: the method's own only
        assert (m.values >= 0).all()  # a variance
    assert dict(maps[1].params) == FAST_PARAMS["occlusion"]
    a = explain(cnn, image(), ["gradient"], target=0, noise_tunnel={"samples": 4}, seed=1)[0].values
    b = explain(cnn, image(), ["gradient"], target=0, noise_tunnel={"samples": 4}, seed=1)[0].values
    c = explain(cnn, image(), ["gradient"], target=0, noise_tunnel={"samples": 4}, seed=2)[0].values
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_smoothgrad_entry_equals_noise_tunnel_over_gradient(cnn):
    sg = explain(cnn, image(), [("smoothgrad", {"samples": 5, "noise": 0.2})], target=2, seed=4)[0]
    nt = explain(cnn, image(), ["gradient"], target=2, seed=4, noise_tunnel={"samples": 5, "noise": 0.2})[0]
    np.testing.assert_allclose(sg.values, nt.values, rtol=1e-5, atol=1e-7)


def test_results_are_picklable_and_progress_reaches_one(cnn):
    import pickle

    seen = []
    maps = explain(cnn, image(), ["gradient", "gradcam"], target=0, progress=lambda f, msg: seen.append(f))
    assert pickle.loads(pickle.dumps(maps))[1].values.shape == (32, 32)
    assert seen[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in seen)


def test_integrated_gradients_rejects_impossible_path_settings(cnn):
    for rule in ("adaptive", "riemann_middle"):
        with pytest.raises(ValueError, match="steps must be >= 2"):
            explain(cnn, image(), [("integrated_gradients", {"steps": 1, "rule": rule})], target=0)
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        explain(cnn, image(), [("integrated_gradients", {"tolerance": -0.1})], target=0)
    (m,) = explain(cnn, image(), [("integrated_gradients", {"steps": 2, "rule": "riemann_middle"})], target=0)
    assert m.steps_used is None and np.isfinite(m.values).all()


def test_integrated_gradients_progress_only_moves_forward(cnn):
    seen = []
    explain(
        cnn,
        image(),
        [("integrated_gradients", {"steps": 20, "tolerance": 1e-9, "max_steps": 60})],
        target=0,
        batch_size=8,
        progress=lambda f, msg: seen.append(f),
    )
    assert seen == sorted(seen) and 0.0 <= seen[0] and seen[-1] == 1.0
    assert len(set(seen)) > 3  # the bar moves during the run, not only at its end


def test_occlusion_default_window_scales_with_the_model_input(cnn):
    # 32 × 16 is for a 224-px input; on the 32-px tiny CNN a 32-px window would black out the whole image at
    # every position, so every pixel would get the same score drop
    occlusion = REGISTRY["occlusion"]
    assert occlusion.defaults((224, 224)) == {"window": 32, "stride": 16} == occlusion.defaults(None)
    assert occlusion.defaults((32, 32)) == {"window": 5, "stride": 2}
    assert occlusion.defaults((64, 32)) == {"window": 5, "stride": 2}  # the shorter side
    assert occlusion.defaults((2, 2)) == {"window": 1, "stride": 1}
    (m,) = explain(cnn, image(), ["occlusion"], target=0)
    assert dict(m.params) == {"window": 5, "stride": 2}
    assert np.ptp(m.values) > 0
    # the full window gives the constant map the scaled default avoids; a given value still wins
    (whole,) = explain(cnn, image(), [("occlusion", {"window": 32})], target=0)
    assert dict(whole.params) == {"window": 32, "stride": 2} and np.ptp(whole.values) == 0
