"""Dependencies point one way: pages -> components -> models -> glimpse.

The maths (every ``glimpse`` package but the command line) imports nothing from ``models``, so it can be
used from a notebook with any model; ``glimpse`` is an installed package, importable from any folder.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP_LAYERS = ("models", "components", "pages", "app")
#: The command line loads models by id for the user, so it is the one part of glimpse that may.
MAY_LOAD_MODELS = ("glimpse/cli/",)


def maths_files() -> list[Path]:
    files = sorted(p for p in (ROOT / "glimpse").rglob("*.py") if "__pycache__" not in p.parts)
    return [p for p in files if not any(p.relative_to(ROOT).as_posix().startswith(m) for m in MAY_LOAD_MODELS)]


def imported_roots(path: Path) -> list[tuple[str, int]]:
    """(top-level module, line) of every absolute import in ``path``, nested ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module.split(".")[0], node.lineno))
    return found


def test_the_maths_imports_no_app_layer():
    files = maths_files()
    assert {"saliency", "attention", "complexity", "evaluation"} <= {p.parent.name for p in files}
    offenders = [
        f"{p.relative_to(ROOT)}:{line} imports {root}"
        for p in files
        for root, line in imported_roots(p)
        if root in APP_LAYERS
    ]
    assert not offenders, offenders


def test_models_imports_no_ui_layer():
    files = sorted(p for p in (ROOT / "models").rglob("*.py") if "__pycache__" not in p.parts)
    offenders = [
        f"{p.relative_to(ROOT)}:{line} imports {root}"
        for p in files
        for root, line in imported_roots(p)
        if root in ("components", "pages", "app")
    ]
    assert not offenders, offenders


@pytest.mark.slow
def test_the_maths_imports_from_any_folder_without_models(tmp_path):
    """Run from an empty folder: glimpse comes from the installed package, and nothing pulls in models."""
    modules = []
    for p in maths_files():
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts.pop()
        modules.append(".".join(parts))
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "import glimpse\n"
        "print(json.dumps({'app': sorted({m.split('.')[0] for m in sys.modules} & set("
        f"{list(APP_LAYERS)!r})), 'glimpse': glimpse.__path__[0]}}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["app"] == [], f"importing the glimpse maths loaded {result['app']}"
    assert Path(result["glimpse"]) == ROOT / "glimpse"
