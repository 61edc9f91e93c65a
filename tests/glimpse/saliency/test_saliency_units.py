"""What a map measures, so the page can share a colour scale only among comparable maps; and which methods
assume non-negative activations at their layer. Both are declared by the methods and read from the registry."""

from __future__ import annotations

import pytest

from glimpse.saliency import REGISTRY, explain, map_units, method_units
from glimpse.saliency.base import MethodInfo
from glimpse.saliency.contract import Method
from glimpse.saliency.npz import ImageRef, read_npz, write_npz
from tests.tiny_models import cnn_bundle, image

#: The groups of methods whose maps are in one unit (at default parameters); every other method is alone.
SHARED_UNITS = [
    {"gradient", "gradient_abs", "smoothgrad"},  # ∂S/∂x
    {"input_x_gradient", "integrated_gradients", "deeplift", "gradient_shap"},  # ΔS per pixel
    {"gradcam", "hirescam", "xgradcam", "layercam"},  # ΔS per layer cell
    {"lime", "kernel_shap"},  # ΔS per superpixel, on the same superpixels
]


def test_every_method_says_what_its_map_measures():
    for name, method in REGISTRY.items():
        assert method.info.units.strip(), f"{name}: declare MethodInfo.units"
        assert method_units(name) == method.units(dict(method.info.params))


def test_units_group_only_comparable_maps():
    by_units: dict[str, set[str]] = {}
    for name in REGISTRY:
        by_units.setdefault(method_units(name), set()).add(name)
    groups = sorted(by_units.values(), key=sorted)
    alone = [{name} for name in REGISTRY if not any(name in g for g in SHARED_UNITS)]
    assert groups == sorted(SHARED_UNITS + alone, key=sorted)
    assert method_units("gradient") == "∂S/∂x" and method_units("integrated_gradients") == "ΔS per pixel"


def test_units_follow_the_parameters_that_change_them():
    # the same superpixels share a unit; different ones do not
    assert method_units("lime", {"segments": 20}) == method_units("kernel_shap", {"segments": 20})
    assert method_units("lime", {"segments": 20}) != method_units("kernel_shap", {"segments": 30})
    assert method_units("occlusion", {"window": 16}) != method_units("occlusion", {"window": 32})


@pytest.mark.parametrize("kind", ["smoothgrad_sq", "vargrad"])
def test_a_squaring_noise_tunnel_squares_the_units(kind):
    assert method_units("gradient", noise_tunnel={"kind": "smoothgrad"}) == "∂S/∂x"  # a mean keeps them
    assert method_units("gradient", noise_tunnel={"kind": kind}) == "(∂S/∂x)²"
    assert method_units("deeplift", noise_tunnel={"kind": kind}) == "(ΔS per pixel)²"
    # SmoothGrad's own kind decides, and a global tunnel does not reach it (its own replaces it, as in explain)
    assert method_units("smoothgrad", {"kind": kind}) == "(∂S/∂x)²"
    assert method_units("smoothgrad", noise_tunnel={"kind": kind}) == "∂S/∂x"
    for name in REGISTRY:
        plain = method_units(name)
        tunnelled = method_units(name, noise_tunnel={"kind": kind})
        assert tunnelled in (plain, f"({plain})²")


def test_map_units_reads_a_maps_method_parameters_and_tunnel():
    bundle = cnn_bundle()
    panel = ["gradient", ("smoothgrad", {"samples": 2}), ("integrated_gradients", {"steps": 8}), "gradcam", "hirescam"]
    maps = {m.method: m for m in explain(bundle, image(), panel, target=1)}
    assert map_units(maps["gradient"]) == map_units(maps["smoothgrad"]) == "∂S/∂x"
    assert map_units(maps["integrated_gradients"]) == "ΔS per pixel"
    assert map_units(maps["gradcam"]) == map_units(maps["hirescam"]) == "ΔS per layer cell @ act2"
    (sq,) = explain(bundle, image(), ["gradient"], target=1, noise_tunnel={"kind": "vargrad", "samples": 2})
    assert map_units(sq) == "(∂S/∂x)²"
    # the same units after the saliency NPZ round trip (parameters come back from JSON)
    for written in (list(maps.values()), [sq]):
        back = read_npz(write_npz(written, image=ImageRef.of(image(), "img.png"))).maps
        assert [map_units(m) for m in back] == [map_units(m) for m in written]
    at_act1 = explain(bundle, image(), ["gradcam"], target=1, layer="act1")[0]
    assert map_units(at_act1) != map_units(maps["gradcam"])  # cells of another layer


def _bare(name: str) -> Method:
    class Bare(Method):
        info = MethodInfo(
            name=name,
            label=name,
            family="gradient",
            explanation="A method that does not say what its map measures.\nFor the test.",
            citation="none",
        )

    return Bare()


def test_an_undeclared_unit_is_the_methods_own(monkeypatch):
    monkeypatch.setitem(REGISTRY, "bare_a", _bare("bare_a"))
    monkeypatch.setitem(REGISTRY, "bare_b", _bare("bare_b"))
    assert method_units("bare_a") != method_units("bare_b")
    assert method_units("bare_a") not in {method_units(n) for n in REGISTRY if not n.startswith("bare_")}


def test_methods_that_assume_nonnegative_activations_say_so():
    flagged = {name for name, m in REGISTRY.items() if m.info.assumes_nonnegative_activations}
    # α = g² / (2g² + ΣA·g³) (Grad-CAM++ and its smooth form); w = Σ g·A / ΣA (XGrad-CAM)
    assert flagged == {"gradcampp", "smooth_gradcampp", "xgradcam"}
    for name in flagged:
        assert REGISTRY[name].info.needs_layer, f"{name}: the flag is about the chosen layer's activations"
