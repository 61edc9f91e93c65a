"""No two classes of the app share a name: a class's name says which one it is, in a traceback, a log, a
search, a docstring cross-reference, without its module beside it.

The app is ``app.py`` and the packages ``glimpse``, ``models``, ``components`` and ``app_pages``; every class
counts, nested ones and those inside functions too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ("app.py", "glimpse", "models", "components", "app_pages")


def app_files() -> list[Path]:
    files = []
    for part in APP:
        path = ROOT / part
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
    return files


def classes_by_name(files: list[Path]) -> dict[str, list[str]]:
    """Class name -> every ``file:line`` that defines a class of that name."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ClassDef):
                found[node.name].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def clashes(files: list[Path]) -> dict[str, list[str]]:
    return {name: places for name, places in classes_by_name(files).items() if len(places) > 1}


def test_the_check_finds_a_clash_across_files_and_inside_functions(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "a.py").write_text("class Item:\n    pass\n\nclass Only:\n    pass\n")
    (tmp_path / "b.py").write_text("def f():\n    class Item:\n        pass\n")
    assert clashes([tmp_path / "a.py", tmp_path / "b.py"]) == {"Item": ["a.py:1", "b.py:2"]}


def test_no_two_classes_of_the_app_share_a_name():
    files = app_files()
    assert len(files) > 100 and any(p.parent.name == "components" for p in files)
    found = clashes(files)
    assert not found, "\n".join(f"{name}: {', '.join(places)}" for name, places in sorted(found.items()))
