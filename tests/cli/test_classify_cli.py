"""``python -m glimpse``: subcommand discovery, ``classify``, and one-line errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from glimpse import cli
from glimpse.images import sample_images

ROOT = Path(__file__).resolve().parents[2]


def glimpse(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "glimpse", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def chelsea_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img") / "chelsea.png"
    Image.fromarray(sample_images()["chelsea"]).save(path)
    return path


def assert_one_line_error(proc: subprocess.CompletedProcess, pattern: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert pattern in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_help_lists_subcommands():
    proc = glimpse("--help")
    assert proc.returncode == 0, proc.stderr
    assert "classify" in proc.stdout and "usage: python -m glimpse" in proc.stdout


def test_no_command_prints_help():
    proc = glimpse()
    assert proc.returncode == 0 and "COMMAND" in proc.stdout


def test_classify_json(chelsea_png):
    proc = glimpse("classify", str(chelsea_png), "--top", "3", "--json", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model"] == "efficientnet-lite0" and len(out["top"]) == 3
    assert out["top"][0]["label"] in {"tabby, tabby cat", "tiger cat", "Egyptian cat"}
    probs = [t["probability"] for t in out["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < probs[0] <= 1


def test_classify_bad_image_is_one_line(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert_one_line_error(glimpse("classify", str(bad)), "not an image format")


# In-process: the same entry point, without the cost of a new interpreter.


def test_missing_file_is_one_line(tmp_path, capsys):
    assert cli.main(["classify", str(tmp_path / "missing.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: image: no such file") and err.count("\n") == 1


def test_unknown_model_is_one_line(chelsea_png, capsys):
    assert cli.main(["classify", str(chelsea_png), "--model", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model: unknown id 'nope'") and err.count("\n") == 1


def test_main_table_output(chelsea_png, capsys):
    assert cli.main(["classify", str(chelsea_png), "--top", "2", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "%" in lines[0] and "(28" in lines[0]


def test_main_rejects_top_zero(chelsea_png, capsys):
    assert cli.main(["classify", str(chelsea_png), "--top", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --top: must be at least 1, got 0"


def test_unknown_subcommand_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["no-such-command"])
    assert exc.value.code == 2


def test_discovery_registers_every_module_with_register():
    import importlib
    import pkgutil

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    expected = [
        info.name
        for info in pkgutil.iter_modules(cli.__path__)
        if hasattr(importlib.import_module(f"glimpse.cli.{info.name}"), "register")
    ]
    assert "classify" in sub.choices
    assert len(sub.choices) >= len(expected)  # a module may register more than one subcommand


def test_user_errors_cover_library_errors():
    from glimpse.images import ImageLoadError
    from models.registry import ModelLoadError

    caught = cli._user_errors()
    for err in (cli.CliError("x"), ImageLoadError("x"), ModelLoadError("x"), ValueError("x")):
        assert isinstance(err, caught)
