"""The README's word-map figure (docs/figures/make_word_maps.py) is made from the embedded models' real maps."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]


def _script():
    spec = importlib.util.spec_from_file_location("make_word_maps", ROOT / "docs" / "figures" / "make_word_maps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_row_holds_the_captions_colour_and_shape_words_maps_for_both_models_and_concept_attention():
    script = _script()
    caption = "a yellow triangle to the left of a green square"  # held out
    rows = script.rows_for(script.load_models(), caption, seed=0)
    assert [label.split("\n")[1] for label, *_ in rows] == ["cross-attention", "cross-attention", "ConceptAttention"]
    for _, image, words, maps in rows:
        assert image.shape == (32, 32, 3) and words == ["yellow", "triangle", "green", "square"]
        assert maps.shape == (4, 32, 32) and np.isfinite(maps).all()
    # the cross-attention maps of the triangle's words peak on the left half, the square's on the right
    for _, _, _, maps in rows[:2]:
        cols = [int(np.unravel_index(np.argmax(m), m.shape)[1]) for m in maps]
        assert cols[0] < 16 and cols[1] < 16 and cols[2] >= 16 and cols[3] >= 16, cols


def test_the_script_writes_the_figure(tmp_path):
    out = _script().main(["--out", str(tmp_path / "maps.png"), "--captions", "1"])
    with Image.open(out) as im:
        assert im.size[0] > 600 and im.size[1] > 300
