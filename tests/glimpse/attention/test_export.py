"""NPZ round trip (no pickles) and the scrubber GIF."""

import io

import numpy as np
import pytest
from PIL import Image

from glimpse.attention.export import attention_npz_bytes, load_attention_npz, scrubber_gif
from glimpse.display import to_rgb as colorize

from .tracefixture import small_trace


def test_npz_round_trip_without_pickle():
    trace = small_trace()
    maps = np.random.default_rng(0).random((len(trace.words), 32, 32)).astype(np.float32)
    mass = np.random.default_rng(1).random((len(trace.words), len(trace.timesteps)))
    image = np.zeros((32, 32, 3), np.uint8)
    data = attention_npz_bytes(
        trace, maps, image=image, mass=mass, slices={"timesteps": (0, 3), "layers": ("up.attn2",), "resolutions": [8]}
    )
    with np.load(io.BytesIO(data), allow_pickle=False) as raw:  # must not need pickle
        assert raw["maps"].dtype == np.float32
        assert raw["words"].dtype.kind == "U"
    out = load_attention_npz(data)
    assert out["words"].tolist() == list(trace.words)
    assert out["tokens"].tolist() == list(trace.tokens)
    np.testing.assert_array_equal(out["maps"], maps)
    np.testing.assert_array_equal(out["timesteps"], trace.timesteps)
    np.testing.assert_array_equal(out["image"], image)
    assert out["mass"].shape == mass.shape
    assert out["resolutions"].tolist() == list(trace.resolutions())
    idx, off = out["word_token_index"], out["word_token_offsets"]
    assert [tuple(idx[off[k] : off[k + 1]]) for k in range(len(trace.words))] == list(trace.word_tokens)
    meta = out["meta"]
    assert meta["prompt"] == trace.prompt and meta["seed"] == trace.seed
    assert meta["slices"] == {"timesteps": [0, 3], "layers": ["up.attn2"], "resolutions": [8]}


def test_npz_rejects_maps_of_the_wrong_length():
    trace = small_trace()
    with pytest.raises(ValueError, match="^maps"):
        attention_npz_bytes(trace, np.zeros((1, 4, 4)))


def test_gif_has_one_frame_per_timestep():
    frames = np.stack([np.roll(np.eye(8), k, axis=1) for k in range(5)])
    data = scrubber_gif(frames, image=np.full((32, 32, 3), 200, np.uint8), labels=[f"t={t}" for t in range(5)], size=64)
    assert len(data) < 50_000
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF"
    assert gif.n_frames == 5
    assert gif.size == (64, 64)


def test_gif_validates_options():
    with pytest.raises(ValueError, match="^frames"):
        scrubber_gif(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="^labels"):
        scrubber_gif(np.zeros((2, 4, 4)), labels=["one"])
    with pytest.raises(ValueError, match="^normalise: unknown"):
        scrubber_gif(np.zeros((2, 4, 4)), normalise="global")


def test_colorize_ends_of_viridis():
    rgb = colorize(np.array([0.0, 1.0]), 0.0, 1.0)
    assert rgb.tolist() == [[68, 1, 84], [253, 231, 37]]
