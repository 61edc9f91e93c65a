"""``python -m glimpse report``: the batch run bundle, in-process (the models load once per test session)."""

import zipfile

import numpy as np
import pytest
from PIL import Image

from glimpse.cli import main
from glimpse.export import read_bundle


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    img = np.full((64, 80, 3), 240, np.uint8)
    img[16:48, 20:60] = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("img") / "patch.png"
    Image.fromarray(img).save(path)
    return path


def test_report_writes_a_bundle_the_page_can_read(image_path, tmp_path, capsys):
    out = tmp_path / "run.zip"
    rc = main(["report", str(image_path), "--methods", "gradient,gradcam", "--k", "10", "--out", str(out)])
    assert rc == 0
    assert "wrote" in capsys.readouterr().out
    run = read_bundle(out)
    assert run.image.shape == (64, 80, 3) and run.image_name == "patch.png"
    names = run.map_names
    assert "saliency: Gradient" in names and "saliency: Grad-CAM" in names
    assert sum(n.startswith("complexity: MSG") for n in names) == 4
    assert run.params["methods"] == ["gradient", "gradcam"] and run.params["k"] == 10.0
    assert run.models["classifier"] == "efficientnet-lite0" and run.prompt is None
    n = len(names)
    assert len(run.tables["agreement"]) == n * (n - 1)
    assert run.tables["region_complexity"][0]["region_map"] == "saliency: Gradient"
    # the report draws the signed gradient with the diverging colour map, the MSG maps with the sequential one
    with zipfile.ZipFile(out) as zf:
        report = zf.read("report.html").decode()
    figures = {f.split("<figcaption>", 1)[1].split("<br>", 1)[0]: f for f in report.split("<figure>")[2:]}
    assert "diverging RdBu_r centred at 0" in figures["saliency: Gradient"]
    assert "sequential Viridis from 0" in figures["complexity: MSG s=1"]


def test_report_with_prompt_generates_and_adds_word_maps(tmp_path):
    out = tmp_path / "gen.zip"
    rc = main(["report", "--prompt", "a red circle", "--methods", "gradcam", "--steps", "1", "--out", str(out)])
    assert rc == 0
    run = read_bundle(out)
    words = [e.meta["word"] for e in run.maps if e.kind == "attention"]
    assert words == ["a", "red", "circle"]
    assert run.prompt == "a red circle" and run.models["t2i"] == "shapes-t2i"
    assert run.seeds["generation"] == 0 and run.image.shape[2] == 3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["report", "--out", "x.zip"], "give an IMAGE"),
        (["report", "IMG", "--prompt", "a red circle", "--out", "x.zip"], "not both"),
        (["report", "IMG", "--out", "x.txt"], "--out: a bundle is a .zip"),
        (["report", "IMG", "--methods", "nope", "--out", "x.zip"], "method: unknown 'nope'"),
        (["report", "IMG", "--k", "0", "--out", "x.zip"], "k: the top-k"),
    ],
)
def test_report_user_errors_are_one_line(argv, message, image_path, tmp_path, capsys):
    argv = [str(image_path) if a == "IMG" else str(tmp_path / a) if a.startswith("x.") else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
