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


@pytest.fixture(scope="module")
def run():
    rng = np.random.default_rng(0)
    return RunRecord(
        image=rng.integers(0, 256, (30, 40, 3), dtype=np.uint8),
        image_name="chelsea",
        maps=(
            MapEntry(
                "saliency: Grad-CAM",
                "saliency",
                rng.standard_normal((28, 28)).astype(np.float32),
                {"method": "gradcam", "params": [["eps", 1e-7]], "target": 281, "layer": "head_act", "seed": 0},
            ),
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
        assert {"manifest.json", "input.png", "maps.npz", "report.html", "metrics/agreement.csv"} <= names
        assert {"overlays/m000.png", "overlays/m001.png", "overlays/m002.png"} <= names
        report = zf.read("report.html").decode()
        manifest = json.loads(zf.read("manifest.json"))
        csv_text = zf.read("metrics/agreement.csv").decode()
    assert "<script" not in report.lower() and "http" not in report.lower()
    assert report.count("data:image/png;base64,") == 4  # input + three overlays
    assert "a red circle" in report
    assert manifest["versions"]["torch"] and manifest["seeds"]["generation"] == 3
    assert csv_text.splitlines()[0] == "map_a,map_b,spearman,pointing_a_in_b"


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
    np.savez(buf, m000=np.array([[{"a": 1}, None]], dtype=object), allow_pickle=True)
    with pytest.raises(BundleError, match="dtype object"):
        read_bundle(rebuild(run, replace={"maps.npz": buf.getvalue()}))


def test_tampered_map_and_not_a_bundle(run):
    buf = io.BytesIO()
    np.savez(buf, m000=np.zeros((28, 28), np.float32), m001=np.zeros((15, 20)), m002=np.zeros((32, 32), np.float16))
    with pytest.raises(BundleError, match="checksum"):
        read_bundle(rebuild(run, replace={"maps.npz": buf.getvalue()}))
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
