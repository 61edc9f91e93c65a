"""MSG, MUC1..8 and edge density equal the paper's OpenCV reference; properties; batching; validation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from skimage import data
from skimage.filters import gaussian

from glimpse.complexity import BITS, complexity_batch, complexity_features, edge_density, msg, muc

pytest.importorskip("cv2", reason="the OpenCV reference is a dev requirement (requirements-dev.txt)")
from tests.glimpse.complexity import cv2_reference as ref  # noqa: E402


def _images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "chelsea-crop": data.chelsea()[40:200, 100:300],  # 160 x 200: every scale an integer factor
        "coffee-odd": data.coffee()[100:213, 150:327],  # 113 x 177: fractional area factors at every scale
        "astronaut-odd": data.astronaut()[::3, ::3][:123, :141],
        "noise": rng.integers(0, 256, (37, 53, 3), dtype=np.uint8),
        "grey-camera": data.camera()[200:290, 150:269],  # (H, W) greyscale
        "min-size": rng.integers(0, 256, (8, 9, 3), dtype=np.uint8),
    }


IMAGES = _images()


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


@pytest.fixture(scope="module")
def features():
    names = list(IMAGES)
    return dict(zip(names, complexity_batch([IMAGES[n] for n in names])))


@pytest.mark.parametrize("name", list(IMAGES))
def test_values_equal_the_reference(features, name):
    img, f = _rgb(IMAGES[name]), features[name]
    assert f.msg == pytest.approx(ref.msg(img), rel=1e-4, abs=1e-7)
    for b in BITS:
        assert f.muc_counts[b - 1].tolist() == ref.muc_counts(img, b), f"MUC{b} counts"
        assert f.muc[b - 1] == ref.muc(img, b)
    assert f.edge_density == pytest.approx(ref.edge_density(img), abs=1e-3)


def test_constant_image_has_known_values():
    f = complexity_features(np.full((23, 37, 3), 131, np.uint8))
    assert f.msg == 0.0
    assert f.muc.tolist() == [1.0] * 8
    assert f.edge_density == 0.0


def test_grey_equals_its_rgb_copy_and_muc1_is_bounded(features):
    grey = IMAGES["grey-camera"]
    rgb = complexity_features(_rgb(grey))
    assert rgb.record() == features["grey-camera"].record()
    assert all(f.muc[0] <= 8 for f in features.values())
    # A grey image has one colour per grey level: MUC_b <= 2^b.
    assert all(rgb.muc[b - 1] <= 2**b for b in BITS)


def test_blur_lowers_msg_and_colours_and_muc_grows_with_bits():
    img = IMAGES["chelsea-crop"]
    blurred = (gaussian(img, sigma=3, channel_axis=-1) * 255).round().astype(np.uint8)
    sharp, soft = complexity_features(img), complexity_features(blurred)
    assert soft.msg < 0.6 * sharp.msg
    assert soft.edge_density < sharp.edge_density
    assert np.all(np.diff(sharp.muc) >= 0)


def test_batch_equals_single_and_mixed_sizes_keep_order(features):
    names = ["noise", "chelsea-crop", "noise"]
    batch = complexity_batch([IMAGES[n] for n in names], batch_size=2, edges=False)
    for n, f in zip(names, batch):
        assert f.msg == pytest.approx(features[n].msg, rel=1e-6)
        np.testing.assert_array_equal(f.muc, features[n].muc)
        assert f.edge_density is None
    single = IMAGES["coffee-odd"]
    assert msg(single) == pytest.approx(features["coffee-odd"].msg, rel=1e-6)
    assert muc(single, bits=5) == features["coffee-odd"].muc[4]


def test_result_is_a_picklable_record(features):
    f = pickle.loads(pickle.dumps(features["noise"]))
    rec = f.record()
    assert list(rec) == ["MSG", *[f"MUC{b}" for b in BITS], "edge_density"]
    assert f.msg_per_scale.shape == (4,) and f.muc_counts.shape == (8, 4)
    assert rec["MSG"] == pytest.approx(float(np.dot(f.msg_per_scale, [0.4, 0.3, 0.2, 0.1])))


def test_edge_density_alone():
    assert edge_density(IMAGES["noise"]) == pytest.approx(ref.edge_density(IMAGES["noise"]), abs=1e-3)


@pytest.mark.parametrize(
    ("image", "kwargs", "match"),
    [
        (np.zeros((7, 20, 3), np.uint8), {}, "image"),
        (np.zeros((20, 20, 3), np.float32), {}, "uint8"),
        (np.zeros((20, 20, 2), np.uint8), {}, "shape"),
        (np.zeros((20, 20, 3), np.uint8), {"bits": 9}, "bits"),
        (np.zeros((20, 20, 3), np.uint8), {"device": "nonsense"}, "device"),
    ],
)
def test_bad_input_names_the_parameter(image, kwargs, match):
    with pytest.raises(ValueError, match=match):
        muc(image, **kwargs)


def test_batch_size_is_validated():
    with pytest.raises(ValueError, match="batch_size"):
        complexity_batch([IMAGES["noise"]], batch_size=0)


def test_device_sort_path_counts_like_the_host_path():
    # The torch.unique branch is what runs on a GPU; on CPU it must give the host (numpy) branch's counts.
    from glimpse.complexity.features import _unique_counts
    from glimpse.complexity.pyramid import area_pyramid, to_batch

    batch = to_batch([IMAGES["noise"], IMAGES["noise"][::-1].copy()], torch.device("cpu"))
    for level in area_pyramid(batch):
        host = _unique_counts(level, BITS, sort_on_host=True)
        device = _unique_counts(level, BITS, sort_on_host=False)
        assert torch.equal(host, device)


def _size_classes() -> list[tuple[int, int]]:
    """(H, W) pairs covering every way the scales can divide the sides: both, one, neither, some scales only."""
    rng = np.random.default_rng(7)
    fixed = [(64, 64), (64, 67), (67, 64), (40, 44), (44, 52), (8, 8), (9, 15), (120, 33), (33, 120)]
    return fixed + [tuple(int(v) for v in rng.integers(8, 97, 2)) for _ in range(25)]


@pytest.mark.parametrize(("levels", "step"), [(256, 1), (4, 85), (2, 1)], ids=["noise", "four-levels", "zero-one"])
def test_cpu_kernel_equals_the_reference_on_every_kind_of_size(levels, step):
    # Few levels put many area means exactly on .5 (zero-one: every 2 x 2 block summing to 2), where the rounding
    # rule and OpenCV's order of float32 additions decide; the integer and single-axis shortcuts must agree.
    rng = np.random.default_rng(levels)
    for h, w in _size_classes():
        img = (rng.integers(0, levels, (h, w, 3)) * step).astype(np.uint8)
        f = complexity_features(img, edges=False)
        assert f.msg == pytest.approx(ref.msg(img), rel=1e-4, abs=1e-7), (h, w)
        for b in BITS:
            assert f.muc_counts[b - 1].tolist() == ref.muc_counts(img, b), (h, w, b)


def test_device_batch_path_equals_the_cpu_kernel():
    # complexity_batch runs the torch batch path on GPUs and the numpy kernel on the CPU; both on the same images.
    from glimpse.complexity.features import _score_group, _score_on_host
    from glimpse.complexity.pyramid import to_batch

    for name, img in IMAGES.items():
        rgb = _rgb(img)
        pair = [rgb, np.ascontiguousarray(rgb[::-1, ::-1])]
        msg_t, per_scale_t, counts_t = _score_group(to_batch(pair, torch.device("cpu")), BITS)
        msg_h, per_scale_h, counts_h = _score_on_host(pair, BITS)
        np.testing.assert_array_equal(counts_t, counts_h, err_msg=name)
        np.testing.assert_allclose(per_scale_t, per_scale_h, rtol=1e-5, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(msg_t, msg_h, rtol=1e-6, err_msg=name)
