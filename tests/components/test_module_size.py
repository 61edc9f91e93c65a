"""The app layer stays readable: no module under components/ grows past 400 lines (issue 26's bound).

A lens is a package (services, controls, views); a module that outgrows the bound is split along those lines.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def test_no_component_module_is_longer_than_400_lines():
    sizes = {
        p.relative_to(ROOT).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
        for p in ROOT.glob("components/**/*.py")
    }
    assert len(sizes) > 20, sizes  # the glob found the packages
    long = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert not long, f"split these along services / controls / views: {long}"
