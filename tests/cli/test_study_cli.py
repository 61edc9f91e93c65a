"""``python -m glimpse study``: the per-image table, the summary with its intervals and the plots, on the
built-in clutter set; equal values in this process and on a local Ray runtime."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from glimpse.cli import main

ARGS = [
    "study",
    "shapes-clutter",
    "--per-level",
    "1",
    "--steps",
    "4",
    "--resamples",
    "50",
    "--method",
    "gradcam,gradient",
]


def test_the_clutter_study_writes_its_table_summary_and_plots(tmp_path, capsys):
    assert main([*ARGS, "--out", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 6 and summary["model_id"] == "shapes-classifier" and summary["errors"] == 0
    assert summary["bootstrap"] == {"resamples": 50, "seed": 0, "level": 0.95, "kind": "percentile", "unit": "image"}
    found = {(c["feature"], c["method"], c["metric"]) for c in summary["correlations"]}
    assert ("MSG", "gradcam", "pointing_game") in found and ("edge_density", "model", "target_probability") in found
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    table = pd.read_parquet(tmp_path / "study.parquet")
    assert {"path", "MSG", "MUC4", "edge_density", "gradcam_pointing_game", "gradient_relevance_mass",
            "gradcam__gradient_spearman", "target_probability"} <= set(table.columns)  # fmt: skip
    assert sorted(table["path"]) == [f"L{lv}-001.png" for lv in range(1, 7)] and table["has_mask"].all()
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {"scatter_MSG.png", "binned_MSG.png"}
    # the same folder again: refused with the reason, nothing lost
    assert main([*ARGS, "--out", str(tmp_path)]) == 2
    assert "already holds rows" in capsys.readouterr().err


def test_a_folder_with_masks_and_a_bad_masks_option(tmp_path, capsys):
    from glimpse.batch.study import write_clutter

    images, masks, _ = write_clutter(tmp_path / "set", per_level=1, seed=1)
    args = ["study", str(images), "--model", "shapes-classifier", "--masks", str(masks), "--steps", "3",
            "--resamples", "20", "--method", "gradient"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "6 images (0 with an error) on shapes-classifier" in out and "pointing_game" in out
    assert main([*args[:5], str(tmp_path / "nowhere"), *args[6:], "--out", str(tmp_path / "o2")]) == 2
    assert "--masks" in capsys.readouterr().err


@pytest.mark.slow
def test_ray_gives_the_in_process_rows(tmp_path, local_ray):
    common = [*ARGS, "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "here")]) == 0
    assert main([*common, "--out", str(tmp_path / "ray"), "--ray", "local"]) == 0
    here = pd.read_parquet(tmp_path / "here" / "study.parquet").sort_values("path").reset_index(drop=True)
    there = pd.read_parquet(tmp_path / "ray" / "study.parquet").sort_values("path").reset_index(drop=True)
    pd.testing.assert_frame_equal(here, there, check_exact=False, rtol=1e-6)


def test_group_by_resamples_groups_of_images_and_a_bad_pattern_is_one_line(tmp_path, capsys):
    """--group-by: a file's group is the pattern's first match in its name; the intervals are the cluster
    bootstrap's over those groups (what the photos set does for a photograph and its crops)."""
    import numpy as np

    from glimpse.batch.study import write_clutter
    from glimpse.evaluation.study import bootstrap_spearman

    images, masks, _ = write_clutter(tmp_path / "set", per_level=2, seed=1)
    args = ["study", str(images), "--model", "shapes-classifier", "--masks", str(masks), "--steps", "3",
            "--resamples", "40", "--method", "gradient", "--group-by", r"^L\d"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "out"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["bootstrap"]["unit"] == "group"
    table = pd.read_parquet(tmp_path / "out" / "study.parquet")
    assert sorted(table["group"].unique()) == [f"L{lv}" for lv in range(1, 7)]
    row = next(
        c
        for c in summary["correlations"]
        if (c["feature"], c["method"], c["metric"]) == ("MSG", "gradient", "relevance_mass")
    )
    rho, low, high, n = bootstrap_spearman(table["MSG"], table["gradient_relevance_mass"], resamples=40, seed=0,
                                           groups=table["group"].to_numpy())  # fmt: skip
    assert (row["rho"], row["ci_low"], row["ci_high"], row["images"]) == (rho, low, high, n) and np.isfinite(low)
    assert main([*args[:-1], "(", "--out", str(tmp_path / "o2")]) == 2
    assert "--group-by" in capsys.readouterr().err and not (tmp_path / "o2").exists()  # refused before any work
