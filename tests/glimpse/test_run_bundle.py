"""Run bundles: export -> import gives back the same run; hostile bundles are refused with clear messages.

(Named test_run_bundle.py, not test_export.py: tests/glimpse/attention/test_export.py has that basename.)
"""

import io
import json
import math
import os
import struct
import zipfile

import numpy as np
import pytest

from glimpse.export import BundleError, MapEntry, RunRecord, bundle_bytes, extract_bundle, read_bundle, write_bundle
from glimpse.saliency import SaliencyMap, Target
from glimpse.saliency.npz import ImageRef, map_meta, read_npz, write_npz


def gradcam_map(values: np.ndarray) -> SaliencyMap:
    return SaliencyMap(
        method="gradcam",
        values=values,
        params=(("eps", 1e-7), ("window", (3, 3))),
        model_id="efficientnet-lite0",
        target=Target(281),
        target_label="tabby",
        layer="head_act",
        seed=0,
        completeness_gap=None,
        seconds=0.01,
    )


@pytest.fixture(scope="module")
def run():
    rng = np.random.default_rng(0)
    sal = gradcam_map(rng.standard_normal((28, 28)).astype(np.float32))
    return RunRecord(
        image=rng.integers(0, 256, (30, 40, 3), dtype=np.uint8),
        image_name="chelsea",
        maps=(
            MapEntry("saliency: Grad-CAM", "saliency", sal.values, map_meta(sal)),
            MapEntry("complexity: MSG s=2", "complexity", rng.random((15, 20)), {"scale": 2}),
            MapEntry("attention: circle", "attention", rng.random((32, 32)).astype(np.float16), {"word": "circle"}),
        ),
        params={"methods": ["gradcam"], "k": 20.0, "absolute": False, "colorscale": "Viridis", "nested": {"a": [1, 2]}},
        models={"classifier": "efficientnet-lite0", "t2i": "shapes-t2i"},
        seeds={"saliency": 0, "generation": 3},
        prompt="a red circle",
        tables={"agreement": ({"map_a": "x", "map_b": "y", "spearman": 0.25, "pointing_a_in_b": True},)},
    )


def test_round_trip_same_maps_params_and_image(run, tmp_path):
    path = tmp_path / "run.zip"
    write_bundle(run, path)
    back = read_bundle(path)
    assert back.map_names == run.map_names
    for a, b in zip(run.maps, back.maps):
        assert b.values.dtype == a.values.dtype
        np.testing.assert_array_equal(b.values, a.values)
        assert b.kind == a.kind
        assert json.dumps(b.meta) == json.dumps(a.meta).replace("(", "[").replace(")", "]")
    np.testing.assert_array_equal(back.image, run.image)
    assert back.params == run.params
    assert back.models == run.models and back.seeds == run.seeds and back.prompt == run.prompt
    assert back.tables["agreement"][0]["spearman"] == 0.25
    assert back.versions["numpy"] == np.__version__ and back.created
    # a second trip through bytes changes nothing (the created time and versions travel too)
    again = read_bundle(bundle_bytes(back))
    assert again.created == back.created and again.params == back.params


def test_bundle_contents_and_offline_report(run):
    data = bundle_bytes(run)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        assert {"manifest.json", "input.png", "maps.npz", "saliency.npz", "report.html"} <= names
        assert "metrics/agreement.csv" in names
        assert {"overlays/m000.png", "overlays/m001.png", "overlays/m002.png"} <= names
        report = zf.read("report.html").decode()
        manifest = json.loads(zf.read("manifest.json"))
        csv_text = zf.read("metrics/agreement.csv").decode()
    assert "<script" not in report.lower() and "http" not in report.lower()
    assert report.count("data:image/png;base64,") == 4  # input + three overlays
    assert "a red circle" in report
    assert manifest["versions"]["torch"] and manifest["seeds"]["generation"] == 3
    assert csv_text.splitlines()[0] == "map_a,map_b,spearman,pointing_a_in_b"


def test_saliency_maps_are_one_saliency_npz(run):
    """The bundle's saliency maps live once, in saliency.npz, in the format the CLI and the page write."""
    data = bundle_bytes(run)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        inner = read_npz(zf.read("saliency.npz"))
        with np.load(io.BytesIO(zf.read("maps.npz"))) as npz:
            assert sorted(npz.files) == ["m001", "m002"]  # no second copy of the saliency map
        manifest = json.loads(zf.read("manifest.json"))
    assert inner.image == ImageRef.of(run.image, "chelsea")
    (m,) = inner.maps
    np.testing.assert_array_equal(m.values, run.maps[0].values)
    assert m.params == (("eps", 1e-7), ("window", (3, 3))) and m.target == Target(281) and m.layer == "head_act"
    assert manifest["version"] == 2
    assert [(e["file"], e["key"]) for e in manifest["maps"]] == [
        ("saliency.npz", "gradcam"),
        ("maps.npz", "m001"),
        ("maps.npz", "m002"),
    ]
    assert manifest["maps"][0]["meta"] == map_meta(m)


def test_saliency_meta_must_describe_a_saliency_map(run):
    odd = RunRecord(**{**run.__dict__, "maps": (MapEntry("saliency: x", "saliency", np.zeros((4, 4)), {"k": 1}),)})
    with pytest.raises(BundleError, match=r"maps\['saliency: x'\]: metadata lacks .*map_meta"):
        bundle_bytes(odd)


def version_1_bundle(run) -> bytes:
    """A bundle as Glimpse wrote it before saliency.npz: every map in maps.npz, saliency params as pairs."""
    legacy = {**map_meta(gradcam_map(run.maps[0].values)), "params": [["eps", 1e-7], ["window", [3, 3]]]}
    del legacy["steps_used"]
    src = zipfile.ZipFile(io.BytesIO(bundle_bytes(run)))
    manifest = json.loads(src.read("manifest.json"))
    manifest["version"] = 1
    arrays = {}
    for i, (entry, m) in enumerate(zip(manifest["maps"], run.maps)):
        del entry["file"]
        entry["key"] = f"m{i:03d}"
        arrays[entry["key"]] = m.values
    manifest["maps"][0]["meta"] = legacy
    npz = io.BytesIO()
    np.savez_compressed(npz, **arrays)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            if info.filename not in ("manifest.json", "maps.npz", "saliency.npz"):
                zf.writestr(info.filename, src.read(info))
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.writestr("maps.npz", npz.getvalue())
    return out.getvalue()


def test_version_1_bundles_still_import_and_re_export(run):
    old = read_bundle(version_1_bundle(run))
    assert old.map_names == run.map_names
    for a, b in zip(run.maps, old.maps):
        np.testing.assert_array_equal(a.values, b.values)
    again = read_bundle(bundle_bytes(old))  # written as version 2, with saliency.npz
    assert again.maps[0].meta == run.maps[0].meta


def test_nan_metrics_survive(run):
    odd = RunRecord(**{**run.__dict__, "tables": {"t": ({"v": float("nan")},)}})
    assert math.isnan(read_bundle(bundle_bytes(odd)).tables["t"][0]["v"])


def test_write_refuses_duplicates_and_non_json(run):
    dup = RunRecord(**{**run.__dict__, "maps": (run.maps[0], run.maps[0])})
    with pytest.raises(BundleError, match="unique"):
        bundle_bytes(dup)
    bad = RunRecord(**{**run.__dict__, "params": {"f": object()}})
    with pytest.raises(BundleError, match=r"params\.f"):
        bundle_bytes(bad)


# ------------------------------------------------------------------ hostile bundles


def rebuild(run, replace=None, add=()):
    """A valid bundle with members replaced or added (name, bytes)."""
    src = zipfile.ZipFile(io.BytesIO(bundle_bytes(run)))
    out = io.BytesIO()
    replace = replace or {}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            zf.writestr(info.filename, replace.get(info.filename, src.read(info)))
        for name, data in add:
            zf.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    "name, message",
    [
        ("../evil.png", r"'\.\.' \(path traversal\)"),
        ("overlays/../../evil.png", "path traversal"),
        ("/etc/evil.png", "absolute path"),
        ("C:/evil.png", "absolute path"),
        ("overlays\\evil.png", "backslash"),
        ("payload.pkl", "pickle"),
        ("maps.pt", "pickle"),
        ("notes.txt", "unexpected member"),
    ],
)
def test_bad_member_names_are_refused(run, name, message):
    with pytest.raises(BundleError, match=message):
        read_bundle(rebuild(run, add=[(name, b"x")]))


def test_oversized_member_by_header(run):
    data = rebuild(run, add=[("overlays/big.png", os.urandom(900_000))])
    with pytest.raises(BundleError, match="above the per-member limit"):
        read_bundle(data, max_member_bytes=600_000)


def lie_about_size(data: bytes, name: str, claimed: int) -> bytes:
    """Rewrite the uncompressed size of ``name`` in both its local and central headers."""
    buf = bytearray(data)
    enc = name.encode()
    i = 0
    while (i := buf.find(b"PK\x01\x02", i)) >= 0:  # central directory entries
        n = struct.unpack_from("<H", buf, i + 28)[0]
        if bytes(buf[i + 46 : i + 46 + n]) == enc:
            struct.pack_into("<I", buf, i + 24, claimed)
            local = struct.unpack_from("<I", buf, i + 42)[0]
            struct.pack_into("<I", buf, local + 22, claimed)
        i += 4
    return bytes(buf)


def test_oversized_member_with_lying_header(run):
    honest = rebuild(run, add=[("overlays/big.png", os.urandom(900_000))])
    lying = lie_about_size(honest, "overlays/big.png", 100)
    assert zipfile.ZipFile(io.BytesIO(lying)).getinfo("overlays/big.png").file_size == 100
    with pytest.raises(BundleError, match="decompresses to more than 600,000 bytes"):
        read_bundle(lying, max_member_bytes=600_000)
    with pytest.raises(BundleError, match="header claims 100"):
        read_bundle(lying)  # under the cap, but still not what the header said


def test_zip_bomb_ratio_total_and_member_count(run):
    bomb = rebuild(run, add=[("overlays/bomb.png", bytes(5_000_000))])
    with pytest.raises(BundleError, match="zip bomb"):
        read_bundle(bomb)
    with pytest.raises(BundleError, match="in total"):
        read_bundle(bundle_bytes(run), max_total_bytes=10_000)
    many = rebuild(run, add=[(f"overlays/x{i}.png", b"x") for i in range(20)])
    with pytest.raises(BundleError, match="members, above the limit of 16"):
        read_bundle(many, max_members=16)


def test_object_array_in_npz_is_refused(run):
    buf = io.BytesIO()
    np.savez(buf, m001=np.array([[{"a": 1}, None]], dtype=object), allow_pickle=True)
    with pytest.raises(BundleError, match="dtype object"):
        read_bundle(rebuild(run, replace={"maps.npz": buf.getvalue()}))
    buf = io.BytesIO()
    np.savez(buf, meta=np.array("{}"), gradcam=np.array([[{"a": 1}, None]], dtype=object), allow_pickle=True)
    with pytest.raises(BundleError, match="saliency.npz: .*without pickle"):
        read_bundle(rebuild(run, replace={"saliency.npz": buf.getvalue()}))


def test_tampered_map_and_not_a_bundle(run):
    buf = io.BytesIO()
    np.savez(buf, m001=np.zeros((15, 20)), m002=np.zeros((32, 32), np.float16))
    with pytest.raises(BundleError, match="maps.npz: map 'complexity: MSG s=2' does not match"):
        read_bundle(rebuild(run, replace={"maps.npz": buf.getvalue()}))
    ref = ImageRef.of(run.image, run.image_name)
    zeros = write_npz([gradcam_map(np.zeros((28, 28), np.float32))], image=ref)
    with pytest.raises(BundleError, match="saliency.npz: map 'saliency: Grad-CAM' does not match"):
        read_bundle(rebuild(run, replace={"saliency.npz": zeros}))
    elsewhere = write_npz([gradcam_map(run.maps[0].values)], image=ImageRef("chelsea", "0" * 40, (30, 40)))
    with pytest.raises(BundleError, match="image digest"):
        read_bundle(rebuild(run, replace={"saliency.npz": elsewhere}))
    with pytest.raises(BundleError, match="saliency.npz: npz: not an .npz"):
        read_bundle(rebuild(run, replace={"saliency.npz": b"junk"}))
    with pytest.raises(BundleError, match="not a zip"):
        read_bundle(b"hello")
    with pytest.raises(BundleError, match="manifest.json"):
        read_bundle(rebuild(run, replace={"manifest.json": b"{"}))


def test_extract_stays_inside_folder(run, tmp_path):
    target = tmp_path / "out"
    written = extract_bundle(bundle_bytes(run), target)
    assert all(p.is_relative_to(target.resolve()) for p in written)
    assert (target / "report.html").is_file()
    with pytest.raises(BundleError, match="path traversal"):
        extract_bundle(rebuild(run, add=[("../escape.png", b"x")]), tmp_path / "o2")
    assert not (tmp_path / "escape.png").exists()
    # a symlink planted inside the folder cannot redirect a member outside it
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    trap = tmp_path / "o3"
    trap.mkdir()
    (trap / "overlays").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BundleError, match="outside"):
        extract_bundle(bundle_bytes(run), trap)
    assert not any(outside.iterdir())


# ------------------------------------------------------------------ overlay colours


def _overlay_rgb(values: np.ndarray) -> np.ndarray:
    """The map drawn alone (alpha 1) over a grey image: the colour map's colours, title bar cropped."""
    from PIL import Image

    from glimpse.export import OVERLAY_SIDE, overlay_png

    image = np.full((values.shape[0] * 8, values.shape[1] * 8, 3), 128, np.uint8)
    png = overlay_png(image, values, alpha=1.0)
    canvas = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    top = canvas.shape[0] - OVERLAY_SIDE * image.shape[0] // max(image.shape[:2])
    return canvas[top:, : OVERLAY_SIDE * image.shape[1] // max(image.shape[:2])]


def _centre(rgb: np.ndarray, col: int, cols: int) -> np.ndarray:
    """The colour at the middle of the col-th of ``cols`` vertical bands."""
    h, w = rgb.shape[:2]
    return rgb[h // 2, int((col + 0.5) * w / cols)].astype(int)


def test_signed_map_overlay_is_diverging_and_centred_at_zero():
    # bands of -1, 0, +4: zero must be the neutral middle colour, -1 a light blue (the range is ±4), +4 dark red
    rgb = _overlay_rgb(np.repeat(np.array([[-1.0, 0.0, 4.0]], np.float32), 3, axis=0))
    neg, zero, pos = (_centre(rgb, i, 3) for i in range(3))
    assert zero.min() > 230 and zero.max() - zero.min() < 12  # near white
    assert neg[2] > neg[0] + 20 and neg.min() > 150  # blue, and light: -1 is a quarter of the way down
    assert pos[0] > pos[2] + 40 and pos.max() < 140  # dark red: +4 is the end of the range


def test_unsigned_map_overlay_is_sequential_from_zero():
    from glimpse.export import colour_scale

    rgb = _overlay_rgb(np.repeat(np.array([[0.0, 0.5, 1.0]], np.float32), 3, axis=0))
    low, _mid, high = (_centre(rgb, i, 3) for i in range(3))
    np.testing.assert_allclose(low, [68, 1, 84], atol=3)  # Viridis' ends
    np.testing.assert_allclose(high, [253, 231, 37], atol=3)
    assert colour_scale(np.array([[0.2, 0.7]])) == ("Viridis", 0.0, 0.7)  # from 0: probabilities, |gradient|
    assert colour_scale(np.array([[-0.5, 2.0]])) == ("RdBu_r", -2.0, 2.0)  # signed: symmetric
    assert colour_scale(np.array([[-0.5, -0.25]])) == ("RdBu_r", -0.5, 0.5)  # all negative is still signed


def test_report_says_which_colour_scale_each_map_uses(run):
    with zipfile.ZipFile(io.BytesIO(bundle_bytes(run))) as zf:
        report = zf.read("report.html").decode()
    bound = float(np.abs(run.maps[0].values).max())
    assert f"diverging RdBu_r centred at 0, ±{bound:.3g}" in report  # the signed Grad-CAM fixture
    assert "sequential Viridis from 0" in report  # MSG and attention maps
