"""Per-scale maps agree with the scalar features; segment-count stand-ins are labelled and sane."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from glimpse.complexity import STANDINS, complexity_features, segment_count
from glimpse.complexity.maps import complexity_maps

IMG = data.astronaut()[::4, ::4][:100, :117]


def test_gradient_maps_average_to_the_msg_terms():
    maps, feats = complexity_maps(IMG, bits=4, window=8), complexity_features(IMG)
    assert [g.shape for g in maps.gradient] == [(100 // s, 117 // s) for s in (1, 2, 4, 8)]
    np.testing.assert_allclose(maps.msg_per_scale, feats.msg_per_scale, rtol=1e-5)
    assert float(np.dot(maps.msg_per_scale, maps.weights)) == pytest.approx(feats.msg, rel=1e-5)
    assert maps.edges.mean() == pytest.approx(feats.edge_density)


def test_colour_maps_count_distinct_colours_per_tile():
    maps = complexity_maps(IMG, bits=4, window=8)
    assert maps.colour[0].shape == (13, 15)  # ceil(100 / 8), ceil(117 / 8)
    assert maps.colour[0].min() >= 1 and maps.colour[0].max() <= 64
    # Brute force one interior tile.
    tile = (IMG[16:24, 40:48].astype(int) >> 4) << 4
    assert maps.colour[0][2, 5] == len({tuple(p) for p in tile.reshape(-1, 3)})
    flat = complexity_maps(np.full((32, 40, 3), 77, np.uint8), window=4)
    assert all(c.max() == 1 for c in flat.colour) and all(g.max() == 0 for g in flat.gradient)


@pytest.mark.parametrize(("kwargs", "match"), [({"bits": 0}, "bits"), ({"window": 1}, "window")])
def test_map_options_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        complexity_maps(IMG, **kwargs)


def test_standins_are_labelled_and_count_regions():
    assert all(name.startswith("standin_") for name in STANDINS)
    flat = np.full((64, 64, 3), 200, np.uint8)
    halves = flat.copy()
    halves[:, 32:] = 20
    for name in STANDINS:
        assert segment_count(flat, method=name) == (1, name)
        assert 2 <= segment_count(halves, method=name)[0] <= 8  # blur can split off the boundary columns
    busy = segment_count(IMG)[0]
    assert busy > 10
    with pytest.raises(ValueError, match="method"):
        segment_count(IMG, method="sam")
    rec = complexity_features(IMG, standins=tuple(STANDINS)).record()
    assert set(STANDINS) <= set(rec)
