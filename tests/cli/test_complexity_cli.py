"""``python -m glimpse complexity`` and ``complexity-fit``: records, formats, paper numbers, one-line errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from glimpse import cli
from glimpse.complexity import complexity_features
from glimpse.complexity.fit import DATA_DIR

ROOT = Path(__file__).resolve().parents[2]
DATA = DATA_DIR
KEYS = ["path", "MSG", *[f"MUC{b}" for b in range(1, 9)], "edge_density"]


@pytest.fixture(scope="module")
def pngs(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("cx")
    paths = []
    for name, arr in {"coffee.png": data.coffee()[::4, ::4], "camera.png": data.camera()[::5, ::5]}.items():
        Image.fromarray(arr).save(folder / name)
        paths.append(folder / name)
    (folder / "broken.png").write_bytes(b"not an image")
    return paths


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_records_match_the_library(capsys, pngs):
    code, out, _ = run(capsys, "complexity", *pngs, "--json")
    assert code == 0
    records = json.loads(out)
    assert [list(r) for r in records] == [KEYS, KEYS]
    expected = complexity_features(np.asarray(Image.open(pngs[0]).convert("RGB"))).record()
    assert records[0]["MSG"] == pytest.approx(expected["MSG"]) and records[0]["MUC4"] == expected["MUC4"]
    assert records[1]["MUC1"] <= 2  # greyscale: one bit per channel gives black or white


def test_csv_with_labelled_standins(capsys, pngs):
    code, out, _ = run(capsys, "complexity", pngs[0], "--csv", "--standins")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 1
    assert list(rows[0])[: len(KEYS)] == KEYS
    assert {"standin_felzenszwalb_segments", "standin_slic_regions"} <= set(rows[0])


def test_table_output(capsys, pngs):
    code, out, _ = run(capsys, "complexity", *pngs)
    assert code == 0 and out.splitlines()[0].split()[:3] == ["path", "MSG", "MUC1"] and len(out.splitlines()) == 3


def test_bad_inputs_exit_2_with_one_line(capsys, pngs, tmp_path):
    code, out, err = run(capsys, "complexity", pngs[0], pngs[0].parent / "broken.png")
    assert code == 2 and out == "" and err.startswith("error: ") and "broken.png" in err and len(err.splitlines()) == 1
    table = tmp_path / "ratings.csv"
    table.write_text("image_id,complexity,MSG\na,0.1,1\nb,0.2,2\nc,0.3,3\nd,0.5,3\n")
    code, _, err = run(capsys, "complexity-fit", table)  # the headline formulas need the segment counts
    assert code == 2 and "sqrt_seg_64points" in err and len(err.splitlines()) == 1
    code, _, err = run(capsys, "complexity-fit", tmp_path / "missing.csv")
    assert code == 2 and "no such file" in err
    code, _, err = run(capsys, "complexity-fit", table, "--repeats", "0")
    assert code == 2 and "--repeats" in err


def test_fit_on_a_user_table(capsys, tmp_path):
    rng = np.random.default_rng(1)
    msg = rng.random(30)
    rows = "\n".join(f"im{i},{m:.6f},{2 * m + 0.1 * rng.random():.6f}" for i, m in enumerate(msg))
    (tmp_path / "mine.csv").write_text("image_id,MSG,complexity\n" + rows + "\n")
    code, out, _ = run(capsys, "complexity-fit", tmp_path / "mine.csv", "--formula", "MSG", "--json")
    (rec,) = json.loads(out)
    assert code == 0 and rec["dataset"] == "mine" and rec["repeats"] == 1 and rec["mean_spearman"] > 0.9


def test_fit_reproduces_rsivl(capsys):
    code, out, _ = run(capsys, "complexity-fit", DATA / "RSIVL.csv", "--formula", "seg+cls", "--json")
    (rec,) = json.loads(out)
    assert code == 0 and rec["repeats"] == 20 and round(rec["mean_spearman"], 2) == 0.83
