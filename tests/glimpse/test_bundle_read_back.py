"""A run bundle keeps its claims: re-imported, it gives the same numbers, and re-running the run from what
the bundle holds (its input image, its parameters, the same model) gives them again.

(The round trip of hand-made records is in test_run_bundle.py; this one starts from a real Compare run.)
"""

from __future__ import annotations

import math

import numpy as np

from glimpse.compare.run import CompareSpec, run_compare
from glimpse.export import bundle_bytes, read_bundle
from glimpse.images import sample_images
from tests.tiny_models import cnn_bundle


def _same_rows(a, b, tol: float = 0.0) -> None:
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for key in ra:
            x, y = ra[key], rb[key]
            if isinstance(x, float) and math.isnan(x):
                assert isinstance(y, float) and math.isnan(y), key
            elif isinstance(x, float) and tol:
                assert isinstance(y, float) and math.isclose(x, y, rel_tol=tol, abs_tol=tol), (key, x, y)
            else:
                assert x == y and type(x) is type(y), (key, x, y)


def test_a_re_imported_compare_run_gives_its_numbers_and_recomputes_them():
    classifier = cnn_bundle()
    image = np.ascontiguousarray(sample_images()["chelsea"][100:164, 150:214])
    spec = CompareSpec(methods=("gradcam", "gradient"), agreement_side=16)
    run = run_compare(classifier, image, spec, image_name="chelsea crop")
    back = read_bundle(bundle_bytes(run))
    # the numbers a bundle shows are the run's, exactly (no rounding on the way through JSON, PNG and NPZ)
    assert set(back.tables) == set(run.tables)
    for name in run.tables:
        _same_rows(run.tables[name], back.tables[name])
    assert run.tables["predictions"][0]["probability"] > 0  # a real classifier output travelled
    np.testing.assert_array_equal(back.image, run.image)
    for a, b in zip(run.maps, back.maps):
        assert a.name == b.name and b.values.dtype == a.values.dtype
        np.testing.assert_array_equal(b.values, a.values)
    # re-running from the bundle's own image and parameters reproduces every table (up to float noise)
    again = run_compare(classifier, back.image, CompareSpec.from_params(back.params), image_name=back.image_name)
    for name in run.tables:
        _same_rows(again.tables[name], back.tables[name], tol=1e-6)
    for a, b in zip(again.maps, back.maps):
        np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-6)
