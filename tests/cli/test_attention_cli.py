"""``python -m glimpse attention``: image.png + attention.npz (words, DAAM maps) + JSON, clear prompt errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from glimpse.attention.export import load_attention_npz
from glimpse.cli import main


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_writes_image_maps_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        ["attention", "--prompt", "a red circle above a blue square", "--steps", "2", "--seed", "1", "--out", str(out)]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["words"] == ["a", "red", "circle", "above", "a", "blue", "square"]
    assert summary["model"] == "shapes-t2i" and summary["steps"] == 2 and summary["seed"] == 1
    image = np.asarray(Image.open(out / "image.png"))
    assert image.shape == (32, 32, 3)
    with np.load(out / "attention.npz") as npz:
        assert list(npz["words"]) == summary["words"]
        maps = npz["maps"]
        assert maps.dtype == np.float32 and maps.shape == (7, 32, 32)
        assert np.all(maps >= 0) and np.all(np.isfinite(maps))
        assert npz["token_maps"].shape == (9, 32, 32)  # [CLS] + 7 words + [SEP]
        np.testing.assert_allclose(maps[1], npz["token_maps"][2])  # word k is token k + 1
    # the page's download format, written by the one attention NPZ writer: the reader takes it, meta included
    saved = load_attention_npz(out / "attention.npz")
    np.testing.assert_array_equal(saved["image"], image)
    meta = saved["meta"]
    assert meta["format"] == "glimpse-attention" and meta["lens"] == "attention"
    assert (meta["prompt"], meta["model_id"], meta["seed"], meta["steps"]) == (
        "a red circle above a blue square",
        "shapes-t2i",
        1,
        2,
    )
    assert meta["slices"]["timesteps"] == [0, 2] and meta["layer_set"] == "daam" and "torch" in meta["versions"]
    assert saved["mass"].shape == (7, 2)


@pytest.mark.parametrize(
    "prompt, message",
    [("  ", "empty"), (" ".join(["a red circle"] * 5), "at most 16 tokens")],
)
def test_bad_prompt_is_one_line_and_exit_2(tmp_path, capsys, prompt, message):
    assert main(["attention", "--prompt", prompt, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: prompt") and message in err and "16 tokens" in err and "\n" not in err
    assert not (tmp_path / "image.png").exists()


def test_layers_all_adds_the_mid_block(tmp_path, capsys):
    args = ["attention", "--prompt", "a red circle", "--steps", "1", "--out"]
    assert main([*args, str(tmp_path / "daam")]) == 0
    daam = json.loads(capsys.readouterr().out)
    assert main([*args, str(tmp_path / "all"), "--layers", "all"]) == 0
    every = json.loads(capsys.readouterr().out)
    assert (daam["layer_set"], every["layer_set"]) == ("daam", "all") and daam["grid"] == every["grid"] == 32
    assert every["layers"] == daam["layers"] + 1  # the embedded UNet's mid-block cross-attention
    with pytest.raises(SystemExit) as exit_info:  # argparse's choices: usage and status 2
        main([*args, str(tmp_path / "x"), "--layers", "mid"])
    assert exit_info.value.code == 2 and "--layers: invalid choice: 'mid'" in capsys.readouterr().err
