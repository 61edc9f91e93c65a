"""A data set from a folder of class sub-folders: reading, skipping, splitting, and DiffROAR on it (CLI)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from glimpse.cli import main
from glimpse.evaluation.folders import image_folder


def _folder(root, per_class: int = 12):
    """Two classes told apart by a bright square on the left (class "left") or on the right ("right")."""
    rng = np.random.default_rng(0)
    for name, cols in (("left", slice(2, 8)), ("right", slice(8, 14))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (16, 16, 3), dtype=np.uint8)
            pixels[5:11, cols] = 255
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    (root / "left" / "broken.png").write_bytes(b"not an image")
    return root


def test_reads_classes_skips_unreadable_files_and_splits_every_class(tmp_path):
    data = image_folder(_folder(tmp_path / "data"), side=16)
    assert data.classes == ("left", "right") and data.images.shape == (24, 16, 16, 3)
    assert len(data.skipped) == 1 and "broken.png" in data.skipped[0]
    train, test = data.split(test_fraction=0.25)
    assert set(train).isdisjoint(test) and len(train) + len(test) == 24
    assert set(data.labels[test]) == {0, 1}
    with pytest.raises(ValueError, match="at least two"):
        image_folder(tmp_path / "data" / "left")


def test_diffroar_on_a_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GLIMPSE_CACHE_DIR", str(tmp_path / "cache"))
    folder = _folder(tmp_path / "data")
    args = ["evaluate", "diffroar", "--folder", str(folder), "--size", "16", "--levels", "0.2", "--seeds", "1"]
    assert main([*args, "--epochs", "3", "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["model"], row["method"], row["k"]) == ("folder:data", "gradient", 0.2)
    assert row["diffroar"] == pytest.approx(row["accuracy_top"] - row["accuracy_bottom"])
    assert main([*args, "--size", "12"]) == 2 and "--size" in capsys.readouterr().err
