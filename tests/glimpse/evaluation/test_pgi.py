"""PGI / PGU on a model whose answer is known: perturbing what it ignores changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from glimpse.evaluation.pgi import pgi_pgu, top_segments
from tests.glimpse.evaluation.test_masks import region_bundle


@pytest.fixture
def bundle():
    """Two classes decided by the top 8 rows of a 16×16 image; the bottom rows are ignored."""
    return region_bundle("top-rows", 16, slice(None, 8), slice(None))


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    pixels[8:] = 255 - pixels[8:]  # a different texture below, so SLIC cuts along row 8
    return pixels


def test_perturbing_only_what_the_model_ignores_costs_nothing(bundle, image):
    result = pgi_pgu(bundle, [image], ["gradient_abs"], ks=(0.5,), perturbation="baseline", segments=8)
    (row,) = result.rows()
    # |gradient| is zero on the ignored rows, so the top half of the superpixels lies in the rows the model reads
    assert row["pgu"] == pytest.approx(0.0, abs=1e-6) and row["pgi"] > 0.0
    noisy = pgi_pgu(bundle, [image], ["gradient_abs"], ks=(0.5,), draws=8, segments=8).rows()[0]
    assert noisy["pgu"] == pytest.approx(0.0, abs=1e-6) and noisy["pgi"] > 0.0
    meta = result.meta()
    assert meta["benchmark"] == "pgi-pgu" and meta["perturbation"] == "baseline" and meta["ks"] == [0.5]


def test_deterministic_and_validated(bundle, image):
    a = pgi_pgu(bundle, [image], ["gradient", "gradient_abs"], draws=4, segments=6)
    b = pgi_pgu(bundle, [image], ["gradient", "gradient_abs"], draws=4, segments=6)
    np.testing.assert_array_equal(a.pgi, b.pgi)
    with pytest.raises(ValueError, match="^perturbation"):
        pgi_pgu(bundle, [image], ["gradient"], perturbation="blur")
    with pytest.raises(ValueError, match="^images"):
        pgi_pgu(bundle, [], ["gradient"])
    with pytest.raises(ValueError, match="^k"):
        top_segments(np.zeros((2, 2)), np.zeros((2, 2), int), 0)
