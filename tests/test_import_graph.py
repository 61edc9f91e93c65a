"""The library and the model registry import each other's modules in one direction: no cycle, and methods below
the engine.

The graph covers ``glimpse`` and ``models``. An import inside a function counts like one at module level, since
a cycle deferred into a function still ties the modules together (neither can be understood, tested or moved
without the other); an import under ``if TYPE_CHECKING:`` does not, since it never runs (it names a type for an
annotation). ``from pkg import name`` reads ``pkg``'s namespace, so it is an edge to ``pkg`` (its
``__init__``) and, where ``name`` is a submodule, to ``pkg.name`` as well; ``import a.b.c`` names ``a.b.c`` only
(it also runs ``a/__init__`` and ``a/b/__init__``, but those implicit parent imports are not edges: every
package imports its own modules).
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the packages whose modules the graph holds
PACKAGES = ("glimpse", "models")
PACKAGE = "glimpse"
METHODS = "glimpse.saliency.methods"
#: What a saliency method may import from glimpse: the contract, and its sibling method files.
METHOD_CONTRACT = ("glimpse.saliency.base", "glimpse.saliency.contract")


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages (``__init__`` names its package)."""
    out = {}
    for path in sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")):
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

    for node in _run_time_nodes(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
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
            # ``from mod import x`` reads mod's namespace (for a package: runs its __init__ and needs it to
            # have got as far as x); where x is a submodule, ``mod.x`` is imported as well
            add(module, node.lineno)
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if full in modules:
                    add(full, node.lineno)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _run_time_nodes(tree: ast.AST):
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:`` (their ``else:`` branch runs, so it stays),
    in :func:`ast.walk`'s order."""
    todo = deque([tree])
    while todo:
        node = todo.popleft()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


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
    assert len(graph) > 40 and "glimpse.saliency.engine" in graph and "models.registry" in graph
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
    # ``from .. import s`` reads the package p (its __init__) and imports the submodule p.s
    assert imports_of("p.q.r", tmp_path / "r.py", modules) == {"p.q": 1, "p": 2, "p.s": 2}
    assert imports_of("p.q", tmp_path / "__init__.py", modules) == {"p.q.r": 1}


def test_imports_inside_functions_count_and_annotation_only_imports_do_not(tmp_path):
    modules = {"p", "p.a", "p.b", "p.c", "p.d", "p.e"}
    (tmp_path / "a.py").write_text(
        "import typing\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from p.b import B\nelse:\n    from p.d import D\n"
        "if typing.TYPE_CHECKING:\n    import p.e\n"
        "def f():\n    import p.c\n"
    )
    assert imports_of("p.a", tmp_path / "a.py", modules) == {"p.d": 6, "p.c": 10}


def test_a_sibling_imported_through_its_package_is_an_edge_to_the_package(tmp_path):
    """``from p import b`` inside p.a needs p's ``__init__``, which (importing p.a) makes a cycle."""
    modules = {"p", "p.a", "p.b"}
    (tmp_path / "a.py").write_text("from p import b\nfrom p.b import thing\nimport p.b\n")
    assert imports_of("p.a", tmp_path / "a.py", modules) == {"p": 1, "p.b": 1}
    graph = {"p": {"p.a": 1, "p.b": 1}, "p.a": {"p": 1, "p.b": 1}, "p.b": {}}
    assert find_cycle(graph) == ["p", "p.a", "p"]


def test_the_library_and_the_models_have_no_import_cycle():
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
