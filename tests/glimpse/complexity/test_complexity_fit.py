"""The paper's cross-validated OLS table is reproduced from the shipped CSVs; user tables and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glimpse.complexity.fit import (
    DATA_DIR,
    HEADLINE_FORMULAS,
    cross_validate,
    default_repeats,
    kfold_splits,
    prepare,
    resolve_formula,
    score_table,
    shipped_tables,
)

DATA = DATA_DIR  # shipped inside the package: a missing table fails the tests, it does not skip them

# Mean test Spearman of the four headline formulas, printed by the paper's linear/analysis.ipynb.
PAPER = {
    "RSIVL": (0.827797811959287, 0.839639324711659, 0.8346794166285834, 0.8405226386639649),
    "VISC": (0.565569972782247, 0.6798026577000598, 0.6836308079329639, 0.7024092408052098),
    "SAVOIAS Scenes": (0.770060746391615, 0.7866970612628572, 0.8123573471583886, 0.8133211375820829),
    "SAVOIAS Objects": (0.821636124387548, 0.8498086780957411, 0.8448935023364101, 0.8502898025894408),
}


@pytest.mark.parametrize("dataset", list(PAPER))
def test_reproduces_the_papers_table(dataset):
    table = prepare(DATA / f"{dataset}.csv", name=dataset)
    results = cross_validate(table, repeats=default_repeats(dataset), dataset=dataset)
    assert [r.name for r in results] == list(HEADLINE_FORMULAS)
    np.testing.assert_allclose([r.mean_rho for r in results], PAPER[dataset], atol=1e-9)
    if dataset == "RSIVL":
        assert round(results[0].mean_rho, 2) == 0.83 and results[0].fold_rho.shape == (60,)


def test_kfold_is_a_partition_like_sklearn():
    splits = kfold_splits(10, seed=1)
    tests = [t for _, t in splits]
    assert [len(t) for t in tests] == [4, 3, 3]
    assert sorted(np.concatenate(tests).tolist()) == list(range(10))
    for train, test in splits:
        assert not set(train) & set(test) and np.all(np.diff(test) > 0)
    assert np.array_equal(tests[0], np.sort(np.random.RandomState(1).permutation(10)[:4]))


def test_user_table_with_our_feature_names():
    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame({"image_id": [f"im{i}" for i in range(n)], "MSG": rng.random(n), "MUC4": rng.random(n) * 100})
    df["complexity"] = 2 * df["MSG"] + 0.01 * df["MUC4"] + 0.05 * rng.random(n)
    results = cross_validate(prepare(df), ["MSG + MUC4", "complexity ~ MSG"], repeats=3, dataset="mine")
    assert results[0].mean_rho > 0.95 > results[1].mean_rho
    assert results[0].predicted.shape == (n,) and results[0].image_id[0] == "im0"
    table = score_table(results)
    assert list(table["name"]) == ["MSG + MUC4", "complexity ~ MSG"] and (table["repeats"] == 3).all()


def test_bad_tables_and_formulas_say_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="no 'complexity' column"):
        prepare(pd.DataFrame({"MSG": [1.0]}))
    with pytest.raises(ValueError, match="sqrt_seg_64points"):
        cross_validate(prepare(pd.DataFrame({"complexity": [0.1, 0.2, 0.3], "MSG": [1, 2, 3]})), ["seg+cls"])
    bad = tmp_path / "x.csv"
    bad.write_bytes(b"\x89PNG\x00\x01")
    with pytest.raises(ValueError, match="readable CSV"):
        prepare(bad, name="x.csv")
    with pytest.raises(ValueError, match="formula"):
        resolve_formula("  ")
    assert default_repeats("SAVOIAS Art") == 2 and default_repeats("IC9600 Person") == 1 and default_repeats("x") == 1


def test_the_paper_tables_ship_inside_the_package():
    tables = shipped_tables()
    assert len(tables) == 16 and {"RSIVL", "VISC", "SVG", "SAVOIAS Art", "IC9600 Scenes"} <= set(tables)
    assert all(path.parent == DATA_DIR for path in tables.values())
    assert "arXiv:2501.15890" in (DATA_DIR / "README.md").read_text(encoding="utf-8")


def test_a_missing_table_folder_is_an_error_not_an_empty_list(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIMPSE_COMPLEXITY_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no CSV files"):
        shipped_tables()
