"""Whole data sets from the pages: the complexity batch tab and the Evaluate page's data-set tab."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from glimpse.batch import read_rows
from glimpse.images import sample_images
from tests.apptest_support import open_page


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "in"
    root.mkdir()
    for name in ("chelsea", "coffee"):
        Image.fromarray(sample_images()[name][::4, ::4]).save(root / f"{name}.png")
    (root / "bad.png").write_bytes(b"not a png")
    return root


def run_complexity_tab(monkeypatch, folder: Path, out: Path, *, cost: str, images: int):
    """The complexity page's data-set tab (server paths on) run on ``folder`` into ``out``, after checking the
    job's cost it shows before it starts (``cost``, e.g. "1 batch", and the count of images); the page."""
    monkeypatch.setenv("GLIMPSE_SERVER_PATHS", "1")
    at = open_page("app_pages/complexity.py")
    at.text_input(key="cx_dataset_in").input(str(folder)).run()
    at.text_input(key="cx_dataset_out").input(str(out)).run()
    assert any(f"**Cost:** {cost}" in c.value and f"{images} images" in c.value for c in at.caption)
    at.button(key="cx_dataset_run").click().run()
    assert not at.exception and not at.error
    return at


def test_server_paths_are_not_offered_unless_the_app_runs_for_its_own_user(monkeypatch):
    monkeypatch.delenv("GLIMPSE_SERVER_PATHS", raising=False)
    at = open_page("app_pages/complexity.py")
    assert not [t for t in at.text_input if t.key == "cx_dataset_in"]
    assert any(
        "GLIMPSE_SERVER_PATHS=1" in c.value and "python -m glimpse batch complexity" in c.value for c in at.caption
    )


def test_the_complexity_tab_runs_a_folder_in_process(monkeypatch, folder, tmp_path):
    at = run_complexity_tab(monkeypatch, folder, tmp_path / "out", cost="1 batch", images=3)
    assert any("3 rows written (1 with an error, 0 already there)" in s.value for s in at.success)
    rows = read_rows(tmp_path / "out")
    assert rows["path"].tolist() == ["bad.png", "chelsea.png", "coffee.png"] and rows["MSG"].notna().sum() == 2
    # the same folder again without Resume: the reason instead of a cost, nothing lost
    assert any("already holds rows: tick Resume" in c.value for c in at.caption)
    assert at.button(key="cx_dataset_run").disabled
    assert len(read_rows(tmp_path / "out")) == 3
    # with Resume and a new image: one more row, the old ones kept
    Image.fromarray(sample_images()["rocket"][::4, ::4]).save(folder / "rocket.png")
    at.checkbox(key="cx_dataset_resume").check().run()
    assert any("1 images" in c.value and "3 already there" in c.value for c in at.caption)
    at.button(key="cx_dataset_run").click().run()
    assert any("1 rows written (0 with an error, 3 already there)" in s.value for s in at.success)
    assert len(read_rows(tmp_path / "out")) == 4


def test_a_data_set_runs_in_steps_of_eight_images(monkeypatch, tmp_path):
    """More images than one step: "batch k of n" steps, one Parquet part each, the report summing them."""
    root = tmp_path / "many"
    root.mkdir()
    for i in range(10):
        Image.fromarray(sample_images()["coffee"][i : i + 40 : 2, ::8]).save(root / f"{i:02d}.png")
    at = run_complexity_tab(monkeypatch, root, tmp_path / "out", cost="2 batches", images=10)
    assert any("10 rows written (0 with an error, 0 already there)" in s.value for s in at.success)
    assert len(list((tmp_path / "out" / "rows").glob("*.parquet"))) == 2


def test_the_evaluate_tab_scores_faithfulness_over_a_folder(monkeypatch, folder, tmp_path):
    monkeypatch.setenv("GLIMPSE_SERVER_PATHS", "1")
    from components.evaluate import TAB_KEY, TABS

    at = open_page("app_pages/evaluate.py")
    at.session_state[TAB_KEY] = TABS[-1]  # only the open tab runs
    at.sidebar.selectbox(key="glimpse_embedded_pick").set_value("blockdigits-standard").run()
    at.multiselect(key="eval_ds_methods").set_value(["gradient"]).run()
    at.slider(key="eval_ds_steps").set_value(5).run()
    at.text_input(key="eval_dataset_in").input(str(folder)).run()
    at.text_input(key="eval_dataset_out").input(str(tmp_path / "eval")).run()
    at.button(key="eval_dataset_run").click().run()
    assert not at.exception and not at.error
    rows = read_rows(tmp_path / "eval")
    assert {"gradient_deletion_auc", "gradient_insertion_auc"} <= set(rows.columns)
    assert rows["gradient_insertion_auc"].notna().sum() == 2
