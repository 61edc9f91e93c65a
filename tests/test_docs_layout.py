"""The layout docs match the tree: every path they name exists, and every page, package and lens module is named."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _named_paths(text: str) -> set[str]:
    """Backticked repository paths (containing a slash, no spaces or call syntax)."""
    spans = re.findall(r"`([^`\s()<>]+)`", text)
    paths = {s.rstrip("/") for s in spans if not s.startswith(("/", "../")) and ":" not in s and "?" not in s}
    return {p for p in paths if "/" in p}


def test_every_path_the_docs_name_exists():
    missing = sorted(p for p in _named_paths(DOCS) | _named_paths(README) if not (ROOT / p).exists())
    assert not missing, f"docs name paths that are not in the tree: {missing}"


def test_every_page_package_and_module_is_named():
    pages = [f"app_pages/{p.name}" for p in sorted((ROOT / "app_pages").glob("*.py"))]
    packages = [
        f"glimpse/{p.parent.name}/" for p in sorted((ROOT / "glimpse").glob("*/__init__.py")) if p.parent.name != "data"
    ]
    modules = [
        p.name
        for sub in ("saliency", "attention", "complexity", "evaluation", "compare")
        for p in sorted((ROOT / "glimpse" / sub).glob("*.py"))
        if p.name != "__init__.py"
    ]
    top = [f"glimpse/{p.name}" for p in sorted((ROOT / "glimpse").glob("*.py")) if not p.name.startswith("__")]
    unnamed = [n for n in (*pages, *packages, *modules, *top) if n not in DOCS and n.rstrip("/") not in DOCS]
    assert not unnamed, f"docs/architecture.md does not say where these are: {unnamed}"
