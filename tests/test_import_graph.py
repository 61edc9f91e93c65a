"""The library's modules import each other in one direction: no cycle, and methods below the engine.

Every import counts — absolute and relative, at module level, inside functions and under ``TYPE_CHECKING`` —
since a cycle deferred into a function or an annotation still ties the modules together (neither can be
understood, tested or moved without the other). Importing ``a.b.c`` also runs ``a/__init__`` and
``a/b/__init__``; those implicit parent imports are not edges (every package imports its own modules), only
the modules an import statement names.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "glimpse"
METHODS = "glimpse.saliency.methods"
#: What a saliency method may import from glimpse: the contract, and its sibling method files.
METHOD_CONTRACT = ("glimpse.saliency.base", "glimpse.saliency.contract")


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (``__init__`` names its package)."""
    out = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, modules: set[str]) -> dict[str, int]:
    """The package's modules that ``name`` (at ``path``) imports, each with the line of its first import."""
    is_package = path.name == "__init__.py"
    found: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        # ``import a.b.c`` names a.b.c; a name that is no module of ours (an attribute) means its module
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.setdefault(target, line)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                base = here[: len(here) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                # ``from pkg import sub`` imports the module pkg.sub; ``from mod import name`` imports mod
                full = f"{module}.{alias.name}"
                add(full if full in modules else module, node.lineno)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    files = module_files()
    names = set(files)
    return {name: imports_of(name, path, names) for name, path in files.items()}


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, iterative)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, {}))))
    return None


def tangles(graph: dict[str, dict[str, int]]) -> list[set[str]]:
    """The groups of modules that all reach one another (strongly connected, two or more modules)."""
    reach = {a: _reachable(graph, a) for a in graph}
    groups: list[set[str]] = []
    for a in sorted(graph):
        group = {b for b in reach[a] if a in reach.get(b, ())} | {a}
        if len(group) > 1 and group not in groups:
            groups.append(group)
    return groups


def _reachable(graph: dict[str, dict[str, int]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, {}))
    while todo:
        b = todo.pop()
        if b not in seen:
            seen.add(b)
            todo.extend(graph.get(b, {}))
    return seen


def describe(graph: dict[str, dict[str, int]]) -> str:
    """Every tangle, with one of its cycles spelled out as file:line imports."""
    files = module_files()
    out = []
    for group in tangles(graph):
        cycle = find_cycle({a: {b: n for b, n in graph[a].items() if b in group} for a in group})
        steps = [f"{files[a].relative_to(ROOT)}:{graph[a][b]} imports {b}" for a, b in zip(cycle, cycle[1:])]
        out.append(f"{len(group)} modules import one another, e.g. " + " -> ".join(cycle) + "\n  " + "\n  ".join(steps))
    return "\n".join(out)


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert len(graph) > 40 and "glimpse.saliency.engine" in graph
    # relative, nested (inside a function) and package-level imports all make edges
    assert "glimpse.saliency.registry" in graph["glimpse.saliency"]
    assert "glimpse.saliency" in graph["glimpse.evaluation.sanity"]  # imported inside a function
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}, "c": {"a": 1, "b": 1}}) is None
    assert tangles({"a": {"b": 1}, "b": {"a": 1}, "c": {"d": 1}, "d": {"c": 1}, "e": {"a": 1}}) == [
        {"a", "b"},
        {"c", "d"},
    ]


def test_relative_imports_resolve_against_the_importing_module(tmp_path):
    modules = {"p", "p.q", "p.q.r", "p.s"}
    (tmp_path / "r.py").write_text("from . import r2\nfrom .. import s\nfrom ..s import thing\n")
    (tmp_path / "__init__.py").write_text("from .r import x\nfrom . import s\n")
    assert imports_of("p.q.r", tmp_path / "r.py", modules) == {"p.q": 1, "p.s": 2}
    assert imports_of("p.q", tmp_path / "__init__.py", modules) == {"p.q.r": 1}


def test_imports_for_annotations_and_inside_functions_count(tmp_path):
    modules = {"p", "p.a", "p.b", "p.c"}
    (tmp_path / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p.b import B\ndef f():\n    import p.c\n"
    )
    assert imports_of("p.a", tmp_path / "a.py", modules) == {"p.b": 3, "p.c": 5}


def test_the_library_has_no_import_cycle():
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, describe(graph)


def test_saliency_methods_import_only_the_contract():
    """A method needs the contract (``base``, ``contract``), never the engine or the registry that run it."""
    offenders = [
        f"{name} imports {target} (line {line})"
        for name, targets in import_graph().items()
        if name.startswith(METHODS + ".")
        for target, line in targets.items()
        if target.startswith(PACKAGE + ".") and target not in METHOD_CONTRACT and not target.startswith(METHODS + ".")
    ]
    assert not offenders, offenders
