"""glimpse/ and models/ are importable from a notebook or the CLI: they never import streamlit."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBS = ("glimpse", "models")


def library_files() -> list[Path]:
    return sorted(p for lib in LIBS for p in (ROOT / lib).rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def streamlit_imports(path: Path) -> list[str]:
    """'file:line' for every import of streamlit (top level or nested, plain or from-import)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    hits = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            names = [a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        hits += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names if n.split(".")[0] == "streamlit"]
    return hits


def test_there_are_library_files():
    names = {module_name(p) for p in library_files()}
    assert {"glimpse.images", "models.registry", "glimpse.cli"} <= names


def test_no_streamlit_import_in_the_source():
    offenders = [hit for path in library_files() for hit in streamlit_imports(path)]
    assert not offenders, f"streamlit imported in library code: {offenders}"


@pytest.mark.slow
def test_importing_every_module_leaves_streamlit_unloaded():
    """Catches indirect imports too (a library module importing a components/ module)."""
    modules = [module_name(p) for p in library_files() if p.name != "__main__.py"]
    script = (
        "import importlib, json, sys\n"
        "errors = {}\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as err:  # report, don't stop: the streamlit check is what matters here\n"
        "        errors[name] = f'{type(err).__name__}: {err}'\n"
        "print(json.dumps({'streamlit': sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit'),"
        " 'errors': errors}))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["streamlit"] == [], f"importing glimpse/ and models/ loaded {result['streamlit'][:5]}"
    assert result["errors"] == {}, f"library modules failed to import: {result['errors']}"
