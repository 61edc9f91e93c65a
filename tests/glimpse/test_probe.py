"""One pixel through every lens (issue 28): every value a probe reports is the map array's value at that pixel
after the documented nearest-cell resize, its percentile is the share of the map at most that value, and a
probe travels in the run's bundle and its HTML report."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from glimpse.compare.run import CompareSpec, run_compare
from glimpse.export import bundle_bytes, read_bundle
from glimpse.images import sample_images
from glimpse.probe import PROBE_TABLE, probe, with_probe


def _nearest(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``values`` resized to ``shape`` by nearest cell centres (the rule the probe documents)."""
    h, w = values.shape
    rows = np.minimum(h - 1, np.floor((np.arange(shape[0]) + 0.5) * h / shape[0]).astype(int))
    cols = np.minimum(w - 1, np.floor((np.arange(shape[1]) + 0.5) * w / shape[1]).astype(int))
    return values[rows][:, cols]


@pytest.fixture(scope="module")
def run():
    from models.registry import load_classifier

    classifier = load_classifier("shapes-classifier", device="cpu")
    image = np.ascontiguousarray(sample_images()["coffee"][::6, ::5][:50, :70])  # 50×70: not the model's 32×32
    return run_compare(classifier, image, CompareSpec(methods=("gradcam", "gradient"), agreement_side=16))


@pytest.mark.parametrize("xy", [(0, 0), (69, 49), (33, 17), (5, 44)])
def test_every_value_is_the_maps_value_at_the_pixel(run, xy):
    x, y = xy
    found = probe(run, x, y)
    assert len(found.values) == len(run.maps) and {v.kind for v in found.values} == {"saliency", "complexity"}
    for entry, value in zip(run.maps, found.values):
        resized = _nearest(np.asarray(entry.values, np.float64), run.image.shape[:2])
        assert value.name == entry.name and value.value == resized[y, x], entry.name
        finite = np.asarray(entry.values, np.float64)
        finite = finite[np.isfinite(finite)]
        assert value.percentile == pytest.approx(100 * np.mean(finite <= value.value)), entry.name
    assert found.words == ()  # no prompt, no words


def test_the_maximum_of_a_map_is_its_100th_percentile(run):
    entry = next(e for e in run.maps if e.kind == "saliency")
    r, c = np.unravel_index(np.argmax(entry.values), entry.values.shape)
    h, w = entry.values.shape
    big_h, big_w = run.image.shape[:2]
    x, y = int((c + 0.5) * big_w / w), int((r + 0.5) * big_h / h)
    assert next(v for v in probe(run, x, y).values if v.name == entry.name).percentile == 100.0


def test_a_pixel_outside_the_image_is_a_clear_error(run):
    with pytest.raises(ValueError, match=r"outside the 70×50 image \(x in 0..69, y in 0..49\)"):
        probe(run, 70, 3)
    with pytest.raises(ValueError, match="outside"):
        probe(run, -1, 3)


def test_words_rank_by_attention_with_their_shares():
    from glimpse.export import MapEntry, RunRecord

    image = np.zeros((8, 8, 3), np.uint8)
    a = np.zeros((4, 4), np.float32)
    a[1, 2] = 3.0
    b = np.full((4, 4), 1.0, np.float32)
    record = RunRecord(image=image, image_name="x", maps=(
        MapEntry("attention: red (#2)", "attention", a, {"word": "red"}),
        MapEntry("attention: circle (#3)", "attention", b, {"word": "circle"}),
    ))  # fmt: skip
    found = probe(record, 5, 3)  # cell (1, 2)
    assert found.words == (("red", 3.0, 0.75), ("circle", 1.0, 0.25))
    assert probe(record, 0, 0).words[0] == ("circle", 1.0, 1.0)


def test_a_probe_travels_in_the_bundle_and_its_report(run):
    found = probe(run, 33, 17)
    back = read_bundle(bundle_bytes(with_probe(run, found)))
    assert list(back.tables[PROBE_TABLE]) == found.rows()
    with zipfile.ZipFile(io.BytesIO(bundle_bytes(with_probe(run, found)))) as z:
        report = next(z.read(n).decode() for n in z.namelist() if n.endswith(".html"))
    assert f"<h2>{PROBE_TABLE}</h2>" in report and "saliency: Grad-CAM" in report
