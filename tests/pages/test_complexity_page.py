"""The visual-complexity page end to end (AppTest): single image, batch scoring with a zip, the paper's model."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from components import uploads as up
from components.complexity import services as ui
from glimpse.complexity.fit import DATA_DIR
from glimpse.images import sample_images
from tests.apptest_support import open_page, put_result, stored

DATA = DATA_DIR


@pytest.fixture(scope="module")
def page() -> AppTest:
    return open_page("app_pages/complexity.py")


def test_single_image_shows_values_bars_and_maps(page):
    assert not page.error, [e.value for e in page.error]
    labels = [m.label for m in page.metric]
    assert "MSG" in labels and "Edge density" in labels
    charts = page.get("plotly_chart")
    assert len(charts) >= 2 + 4  # two per-scale bar charts, four per-scale maps
    assert any('"colorbar"' in c.proto.spec for c in charts)
    page.radio(key="cx_map_kind").set_value("colour").run()
    assert not page.exception, page.exception


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


class _File:
    def __init__(self, name: str, data: bytes) -> None:
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


def test_zip_uploads_are_capped_and_non_images_skipped():
    samples = sample_images()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a/coffee.png", _png(samples["coffee"][::8, ::8]))
        z.writestr("notes.txt", "hello")
        z.writestr("__MACOSX/._coffee.png", "junk")
    files = [_File("batch.zip", buf.getvalue()), _File("cat.png", _png(samples["chelsea"][::8, ::8]))]
    uploads, skipped = up.expand_uploads(files)
    assert [u.name for u in uploads] == ["a/coffee.png", "cat.png"]
    assert len(skipped) == 2 and any("notes.txt" in s for s in skipped)
    uploads.append(up.Upload("broken.png", b"nope"))
    seen = []
    table, errors = ui.score_uploads(uploads, False, lambda f, t: seen.append(f))
    assert list(table["image_id"]) == ["a/coffee.png", "cat.png"] and seen[-1] == 1.0
    assert len(errors) == 1 and "broken.png" in errors[0]
    assert table["thumbnail"].str.startswith("data:image/jpeg;base64,").all()
    csv = ui.table_csv(table).decode()
    assert csv.splitlines()[0].startswith("image_id,MSG,MUC1") and "thumbnail" not in csv


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_zip_members_keep_their_folder():
    """Two coffee.png in different folders are two rows, named by their path inside the zip."""
    samples = sample_images()
    small, other = _png(samples["coffee"][::8, ::8]), _png(samples["chelsea"][::8, ::8])
    first = _zip({"2023/coffee.png": small, "2024/coffee.png": other, "2024/raw/coffee.png": small, "top.png": other})
    second = _zip({"2023/coffee.png": other})  # the same path in another zip
    uploads, skipped = up.expand_uploads([_File("first.zip", first), _File("second.zip", second)])
    assert not skipped
    assert [u.name for u in uploads] == [
        "2023/coffee.png",
        "2024/coffee.png",
        "2024/raw/coffee.png",
        "top.png",
        "second.zip/2023/coffee.png",
    ]
    table, errors = ui.score_uploads(uploads, False, lambda f, t: None)
    assert not errors and table["image_id"].is_unique and len(table) == 5
    # identical bytes in two folders: two rows with the same values, told apart by their names
    rows = table.set_index("image_id")
    assert rows.loc["2023/coffee.png", "MSG"] == rows.loc["2024/raw/coffee.png", "MSG"]
    assert rows.loc["2023/coffee.png", "MSG"] != rows.loc["2024/coffee.png", "MSG"]


def test_zip_caps_still_apply_with_folders(monkeypatch):
    png = _png(sample_images()["coffee"][::8, ::8])
    monkeypatch.setattr(up, "ZIP_MAX_MEMBERS", 3)
    monkeypatch.setattr(up, "ZIP_MAX_MEMBER_BYTES", len(png) + 10)
    monkeypatch.setattr(up, "ZIP_MAX_TOTAL_BYTES", len(png) + 10)
    data = _zip({"a/one.png": png, "b/big.png": png + bytes(100), "c/two.png": png, "d/three.png": png})
    uploads, skipped = up.expand_uploads([_File("z.zip", data)])
    assert [u.name for u in uploads] == ["a/one.png"]
    assert any("only the first 3" in s for s in skipped)  # d/three.png is not read
    assert any(s.startswith("z.zip/b/big.png: too large") for s in skipped)  # per member
    assert any(s.startswith("z.zip/c/two.png: too large") for s in skipped)  # in total


def test_batch_tab_scores_a_zip_with_folders(page):
    samples = sample_images()
    data = _zip(
        {
            "left/coffee.png": _png(samples["coffee"][::8, ::8]),
            "right/coffee.png": _png(samples["chelsea"][::8, ::8]),
            "right/readme.txt": b"not an image",
        }
    )
    page.file_uploader(key="cx_batch_files").set_value([("shots.zip", data, "application/zip")])
    next(b for b in page.button if b.label == "Score images").click()
    page.run()
    assert not page.exception, page.exception
    table = next(d.value for d in page.dataframe if "image_id" in d.value.columns)
    assert list(table["image_id"]) == ["left/coffee.png", "right/coffee.png"]
    assert any("right/readme.txt" in m.value for m in page.markdown)  # skipped, with its path


def test_batch_tab_table_after_scoring(page):
    # the stored result is what the Score button writes
    uploads = [up.Upload(n, _png(a[::8, ::8])) for n, a in list(sample_images().items())[:3]]
    table, errors = ui.score_uploads(uploads, False, lambda f, t: None)
    put_result(page, ui.BATCH_KEY, (table, errors))
    page.run()
    assert not page.exception, page.exception
    assert page.selectbox(key="cx_scatter_x").value == "MSG"
    assert any(d.label == "Download CSV" for d in page.get("download_button"))


def test_model_tab_fits_the_shipped_rsivl(page):
    page.selectbox(key="cx_fit_dataset").set_value("RSIVL")
    page.multiselect(key="cx_fit_formulas").set_value(["seg+cls", "seg+cls+MSG"])
    next(b for b in page.button if b.label == "Fit").click()
    page.run()
    assert not page.exception, page.exception
    assert not page.error, [e.value for e in page.error]
    dataset, m, results = stored(page, ui.FIT_KEY)
    assert dataset == "RSIVL" and m == 20
    assert round(results[0].mean_rho, 2) == 0.83


def test_a_skipped_image_is_named_by_its_file_not_an_internal_index():
    """The batch's skip reason read "images[0]: needs at least 8x8 pixels…": the index of the image in the one-image
    batch the page scores, not the file."""
    uploads = [up.Upload("tiny/dot.png", _png(np.zeros((4, 5, 3), np.uint8))), up.Upload("empty.png", b"")]
    table, errors = ui.score_uploads(uploads, False, lambda f, t: None)
    assert table.empty
    assert errors[0] == "tiny/dot.png: needs at least 8x8 pixels for the 1/8 scale, got 5x4"
    assert errors[1] == "image: empty.png is empty (0 bytes)"
    assert not any("images[" in e for e in errors)
