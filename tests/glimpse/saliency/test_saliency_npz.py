"""The one saliency NPZ format: write -> read gives the same maps and metadata; bad files are refused."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from glimpse.saliency import SaliencyMap, Target, explain, map_units
from glimpse.saliency.npz import (
    FORMAT,
    VERSION,
    ImageRef,
    NpzFormatError,
    map_from_meta,
    map_meta,
    read_npz,
    save_npz,
    write_npz,
)
from tests.tiny_models import cnn_bundle, image


@pytest.fixture(scope="module")
def pixels():
    return image(40, 48)


@pytest.fixture(scope="module")
def maps(pixels):
    methods = ["gradient", "gradcam", ("integrated_gradients", {"steps": 8}), "occlusion"]
    return explain(cnn_bundle(), pixels, methods, target=Target(1, contrast=2), seed=3)


def assert_same(a: SaliencyMap, b: SaliencyMap) -> None:
    np.testing.assert_array_equal(a.values, b.values)
    assert b.values.dtype == np.float32
    for name in ("method", "params", "model_id", "target", "target_label", "layer", "seed", "seconds", "noise_tunnel"):
        assert getattr(b, name) == getattr(a, name), name
    assert b.completeness_gap == a.completeness_gap and b.steps_used == a.steps_used


def test_round_trip_gives_equal_arrays_and_metadata(maps, pixels, tmp_path):
    ref = ImageRef.of(pixels, "img.png")
    assert ref.size == (40, 48) and len(ref.digest) == 40 and ref.matches(pixels)
    path = save_npz(tmp_path / "out" / "maps.npz", maps, image=ref)
    back = read_npz(path)
    assert back.image == ref
    assert [m.method for m in back.maps] == [m.method for m in maps]
    for a, b in zip(maps, back.maps):
        assert_same(a, b)
    assert back.maps[2].steps_used is not None and back.maps[2].completeness_gap is not None
    # bytes and file objects read the same; writing the read maps gives the same file again
    data = write_npz(maps, image=ref)
    assert read_npz(io.BytesIO(data)).image == ref
    assert write_npz(back.maps, image=back.image) == data
    # at the image's size: the documented bilinear resize
    full = back.at_image_size()
    assert full["gradcam"].shape == (40, 48)
    np.testing.assert_array_equal(full["gradcam"], maps[1].at_size(40, 48))


def test_plain_numpy_reads_the_documented_layout(maps, pixels):
    data = write_npz(maps, image=ImageRef("img.png", "0123456789abcdef", (40, 48)))
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(["meta", "gradient", "gradcam", "integrated_gradients", "occlusion"])
        meta = json.loads(str(npz["meta"]))
        assert npz["gradcam"].dtype == np.float32 and npz["gradcam"].shape == maps[1].values.shape
    assert meta["format"] == FORMAT and meta["version"] == VERSION == 2
    assert meta["image"] == {"name": "img.png", "digest": "0123456789abcdef", "height": 40, "width": 48}
    entry = meta["maps"][1]
    assert set(entry) == {
        "key", "shape", "dtype", "method", "params", "model_id", "target", "contrast", "target_label", "layer",
        "seed", "completeness_gap", "steps_used", "seconds", "noise_tunnel",
    }  # fmt: skip
    assert entry["key"] == entry["method"] == "gradcam" and entry["layer"] == "act2"
    assert entry["target"] == 1 and entry["contrast"] == 2 and entry["target_label"] == "banana − cherry"
    assert entry["seed"] == 3 and isinstance(entry["params"], dict) and entry["noise_tunnel"] is None


def test_meta_round_trips_on_its_own(maps):
    for m in maps:
        assert_same(m, map_from_meta(m.values, json.loads(json.dumps(map_meta(m)))))
    # version-1 run bundles stored params as [name, value] pairs and had no steps_used
    old = {**map_meta(maps[3]), "params": [list(p) for p in maps[3].params]}
    del old["steps_used"]
    assert map_from_meta(maps[3].values, old).params == maps[3].params


@pytest.fixture(scope="module")
def tunnelled(pixels):
    nt = {"kind": "vargrad", "samples": 2, "noise": 0.1}
    return explain(cnn_bundle(), pixels, ["gradient", ("smoothgrad", {"samples": 2})], target=1, noise_tunnel=nt)


def test_the_noise_tunnel_is_its_own_entry_and_round_trips(tunnelled, pixels):
    data = write_npz(tunnelled, image=ImageRef.of(pixels, "img.png"))
    entries = json.loads(str(np.load(io.BytesIO(data))["meta"]))["maps"]
    assert entries[0]["noise_tunnel"] == {"kind": "vargrad", "noise": 0.1, "samples": 2} and entries[0]["params"] == {}
    assert entries[1]["noise_tunnel"] is None and entries[1]["params"]["samples"] == 2  # SmoothGrad's own tunnel
    back = read_npz(data)
    for a, b in zip(tunnelled, back.maps):
        assert_same(a, b)
    assert map_units(back.maps[0]) == map_units(tunnelled[0]) == "(∂S/∂x)²"


def version_1(data: bytes) -> bytes:
    """``data`` as version 1 wrote it: no noise_tunnel entry, its options among the params."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    meta["version"] = 1
    for entry in meta["maps"]:
        tunnel = entry.pop("noise_tunnel")
        entry["params"].update({f"noise_tunnel.{k}": v for k, v in (tunnel or {}).items()})
    arrays["meta"] = np.array(json.dumps(meta))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def test_version_1_files_still_read_their_noise_tunnel_from_the_params(tunnelled, pixels):
    old = version_1(write_npz(tunnelled, image=ImageRef.of(pixels, "img.png")))
    assert json.loads(str(np.load(io.BytesIO(old))["meta"]))["maps"][0]["params"]["noise_tunnel.kind"] == "vargrad"
    back = read_npz(old)
    for a, b in zip(tunnelled, back.maps):
        assert_same(a, b)  # the same maps as the version-2 file: the tunnel out of the params, into its field
    assert map_units(back.maps[0]) == "(∂S/∂x)²"
    # and they are written again as version 2
    assert json.loads(str(np.load(io.BytesIO(write_npz(back.maps, image=back.image)))["meta"]))["version"] == 2


def test_a_noise_tunnel_must_be_complete_and_given_once(tunnelled):
    meta = map_meta(tunnelled[0])
    with pytest.raises(NpzFormatError, match="both in noise_tunnel and among the params"):
        map_from_meta(tunnelled[0].values, {**meta, "params": {"noise_tunnel.kind": "vargrad"}})
    with pytest.raises(NpzFormatError, match="noise_tunnel: expected an object with kind"):
        map_from_meta(tunnelled[0].values, {**meta, "noise_tunnel": {"kind": "vargrad"}})
    with pytest.raises(NpzFormatError, match="noise_tunnel: expected an object with kind"):
        map_from_meta(tunnelled[0].values, {**meta, "noise_tunnel": {"kind": "vargrad", "samples": "2", "noise": 0}})


def _rebuild(data: bytes, replace: dict[str, np.ndarray] | None = None, drop: tuple = ()) -> bytes:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k not in drop}
    arrays.update(replace or {})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_bad_files_are_refused_with_the_reason(maps, pixels):
    good = write_npz(maps, image=ImageRef.of(pixels, "img.png"))
    meta = json.loads(str(np.load(io.BytesIO(good))["meta"]))
    cases = [
        (b"hello", "not an .npz"),
        (_rebuild(good, drop=("meta",)), "no 'meta' entry"),
        (_rebuild(good, drop=("gradcam",)), "'gradcam' is missing"),
        (_rebuild(good, {"extra": np.zeros((2, 2), np.float32)}), "not described"),
        (_rebuild(good, {"gradcam": np.zeros((3, 3), np.float32)}), "the metadata says"),
        (_rebuild(good, {"meta": np.array(json.dumps({**meta, "version": 9}))}), "meta.version"),
        (_rebuild(good, {"meta": np.array(json.dumps({**meta, "format": "x"}))}), "meta.format"),
        (_rebuild(good, {"meta": np.array("{")}), "not valid JSON"),
    ]
    for data, message in cases:
        with pytest.raises(NpzFormatError, match=message):
            read_npz(data)
    pickled = io.BytesIO()
    np.savez(pickled, meta=np.array(str(meta)), gradcam=np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    with pytest.raises(NpzFormatError, match="without pickle"):
        read_npz(pickled.getvalue())
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("meta.npy", bytes(5_000_000))
    with pytest.raises(NpzFormatError, match="limit max_bytes"):
        read_npz(bomb.getvalue(), max_bytes=1_000_000)


def test_write_refuses_what_the_format_cannot_hold(maps, pixels):
    ref = ImageRef.of(pixels, "img.png")
    with pytest.raises(NpzFormatError, match="appears twice"):
        write_npz([maps[0], maps[0]], image=ref)
    with pytest.raises(NpzFormatError, match="nothing to write"):
        write_npz([], image=ref)
    with pytest.raises(NpzFormatError, match="image.digest"):
        ImageRef("img.png", "not-hex", (4, 4))
    with pytest.raises(NpzFormatError, match="image.size"):
        ImageRef("img.png", "0123456789abcdef", (0, 4))
    with pytest.raises(NpzFormatError, match=r"\.npz file name"):
        save_npz("maps.txt", maps, image=ref)
