"""The visual-complexity page end to end (AppTest): single image, batch scoring with a zip, the paper's model."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from components import complexity_ui as ui
from glimpse.complexity.fit import DATA_DIR
from glimpse.images import sample_images
from tests.apptest_support import open_page

DATA = DATA_DIR


@pytest.fixture(scope="module")
def page() -> AppTest:
    return open_page("pages/complexity.py")


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
    uploads, skipped = ui.expand_uploads(files)
    assert [u.name for u in uploads] == ["coffee.png", "cat.png"]
    assert len(skipped) == 2 and any("notes.txt" in s for s in skipped)
    uploads.append(ui.Upload("broken.png", b"nope"))
    seen = []
    table, errors = ui.score_uploads(uploads, False, lambda f, t: seen.append(f))
    assert list(table["image_id"]) == ["coffee.png", "cat.png"] and seen[-1] == 1.0
    assert len(errors) == 1 and "broken.png" in errors[0]
    assert table["thumbnail"].str.startswith("data:image/jpeg;base64,").all()
    csv = ui.table_csv(table).decode()
    assert csv.splitlines()[0].startswith("image_id,MSG,MUC1") and "thumbnail" not in csv


def test_batch_tab_table_after_scoring(page):
    # AppTest cannot drive file_uploader; the stored result is what the Score button writes.
    uploads = [ui.Upload(n, _png(a[::8, ::8])) for n, a in list(sample_images().items())[:3]]
    table, errors = ui.score_uploads(uploads, False, lambda f, t: None)
    page.session_state[ui.BATCH_KEY] = (table, errors)
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
    dataset, m, results = page.session_state[ui.FIT_KEY]
    assert dataset == "RSIVL" and m == 20
    assert round(results[0].mean_rho, 2) == 0.83
