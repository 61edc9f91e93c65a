"""Apple's MPS backend has no float64, and the sidebar offers MPS: library code must never make a float64
tensor on the model's device. Float64 work happens on the CPU (``.to("cpu", torch.float64)``).

No MPS device is available in CI, so this reads the code: every ``.double()`` call is forbidden (it keeps
the device), and every tensor created or converted with ``dtype=torch.float64`` must not name a device.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBS = ("glimpse", "models", "components")


def float64_on_device(path: Path) -> list[str]:
    hits = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        if isinstance(node.func, ast.Attribute) and node.func.attr == "double":
            hits.append(f"{where} .double() keeps the device")
        keywords = {k.arg: k.value for k in node.keywords}
        dtype = keywords.get("dtype")
        is_f64 = isinstance(dtype, ast.Attribute) and dtype.attr in ("float64", "double")
        if is_f64 and "device" in keywords:
            hits.append(f"{where} float64 with device=")
    return hits


def test_no_float64_on_the_model_device():
    files = sorted(p for lib in LIBS for p in (ROOT / lib).rglob("*.py") if "__pycache__" not in p.parts)
    hits = [h for p in files for h in float64_on_device(p)]
    assert not hits, "float64 on a device (MPS has none); use .to('cpu', torch.float64):\n" + "\n".join(hits)


def test_the_check_sees_both_patterns(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nx = torch.ones(2).double()\ny = torch.zeros(2, dtype=torch.float64, device='mps')\n")
    good = tmp_path / "good.py"
    good.write_text(
        "import torch\nx = torch.ones(2).to('cpu', torch.float64)\ny = torch.zeros(2, dtype=torch.float64)\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert len(float64_on_device(bad)) == 2 and float64_on_device(good) == []
    finally:
        ROOT = saved
