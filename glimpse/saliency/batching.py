"""How many images a batched pass should hold on this device: measured once, then remembered.

Sampling and path methods (SmoothGrad, Integrated Gradients, GradientSHAP, RISE, ...) push many images
through the model, a batch at a time. The fastest batch depends on the model, the device and the thread
count (a few CPU threads saturate at a handful of images, a GPU wants many more), so a constant is wrong
somewhere. :func:`batch_size_for` times one forward+backward per
candidate size, as :func:`glimpse.saliency.explain` runs them, picks the fastest per image (the smaller one
when two are within ``TIE``), and stores it in a JSON file in the user's cache folder, keyed by model, device,
torch version and thread count. Later processes read it back, so the app and the command line use the same
batch on one machine (maps can differ in the last float bits between batch sizes).

``GLIMPSE_BATCH_SIZE`` forces a size; ``GLIMPSE_CACHE_DIR`` moves the cache (default
``$XDG_CACHE_HOME/glimpse`` or ``~/.cache/glimpse``).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import torch

from glimpse.devices import synchronize
from glimpse.saliency.base import Target
from glimpse.saliency.contract import ScoreModel

#: Batch sizes tried, by device type.
CANDIDATES: dict[str, tuple[int, ...]] = {
    "cpu": (1, 2, 4, 8, 12, 16, 24, 32),
    "cuda": (8, 16, 32, 64, 128),
    "mps": (4, 8, 16, 32, 64),
}
#: Two sizes within this fraction of each other's time per image count as equally fast.
TIE = 0.05
#: The measurement stops after this many seconds (once two sizes are timed), and once two sizes in a row were
#: slower per image than the best before them: a CPU saturates at a few images, and timing every candidate of a
#: 224-px ResNet took about 45 s on one busy thread, the first map's wait. With the stops, on a quiet 2-core CPU
#: (2 threads, three runs each): EfficientNet-Lite0 3.8-7.7 s (choosing 4 or 8), the 32-px shapes ViT 0.3-0.4 s.
MEASURE_BUDGET_S = 5.0
SLOWER_IN_A_ROW = 2
CACHE_FILE = "batch_sizes.json"

_lock = threading.Lock()
_memo: dict[str, int] = {}


def cache_dir() -> Path:
    """``$GLIMPSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/glimpse``, else ``~/.cache/glimpse``."""
    env = os.environ.get("GLIMPSE_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "glimpse"


def device_key(bundle) -> str:
    """What the measurement depends on: model, device (by name), torch version and CPU threads."""
    device = bundle.device
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "cpu":
        name = platform.processor() or platform.machine() or "cpu"
    else:
        name = device.type
    return f"{bundle.model_id}|{device.type}:{name}|torch {torch.__version__}|threads {torch.get_num_threads()}"


def _override() -> int | None:
    raw = os.environ.get("GLIMPSE_BATCH_SIZE", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"GLIMPSE_BATCH_SIZE: expected a positive integer, got {raw!r}")
    return int(raw)


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict) -> None:
    """Atomically, and silently not at all where the cache folder cannot be written (a read-only home)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(f.name, path)
    except OSError:
        pass


def measure_batch_times(bundle, candidates: tuple[int, ...]) -> dict[int, float]:
    """Seconds per image of one forward+backward at each batch size (channels-last, as ``explain`` runs it),
    in increasing order, until :data:`SLOWER_IN_A_ROW` sizes in a row are slower than the best before them
    (by more than :data:`TIE`) or :data:`MEASURE_BUDGET_S` has passed: the sizes left out are not timed.

    Holds the bundle's lock; draws its inputs from a private generator.
    """
    candidates = tuple(sorted(candidates))
    h, w = bundle.input_size
    lo, hi = bundle.input_range
    g = torch.Generator().manual_seed(0)
    images = (lo + (hi - lo) * torch.rand((max(candidates), 3, h, w), generator=g)).to(bundle.device)
    score = ScoreModel(bundle.model, Target(0))

    def pass_of(b: int) -> float:
        x = images[:b].detach().requires_grad_(True)
        start = time.perf_counter()
        with torch.enable_grad():
            torch.autograd.grad(score(x).sum(), x)
        synchronize(bundle.device)
        return time.perf_counter() - start

    times: dict[int, float] = {}
    with bundle.lock:
        pass_of(candidates[0])  # warm-up: first-call allocations and kernel choices
        start, slower = time.perf_counter(), 0
        for b in candidates:
            best = min(times.values(), default=float("inf"))
            times[b] = min(pass_of(b), pass_of(b)) / b
            slower = slower + 1 if times[b] > best * (1.0 + TIE) else 0
            if slower >= SLOWER_IN_A_ROW or (len(times) >= 2 and time.perf_counter() - start > MEASURE_BUDGET_S):
                break
    return times


def choose(times: dict[int, float]) -> int:
    """The batch with the least time per image; the smallest of those within ``TIE`` of it."""
    best = min(times.values())
    return min(b for b, t in times.items() if t <= best * (1.0 + TIE))


def batch_size_for(bundle) -> int:
    """The batch size for ``bundle``'s batched passes on its device (see the module docstring).

    Call it before taking the bundle's lock (a first measurement takes it).

    Raises
    ------
    ValueError
        ``GLIMPSE_BATCH_SIZE`` is set to something other than a positive integer.
    """
    forced = _override()
    if forced is not None:
        return forced
    key = device_key(bundle)
    path = cache_dir() / CACHE_FILE
    with _lock:
        if key in _memo:
            return _memo[key]
        stored = _read(path).get(key)
        if isinstance(stored, int) and stored >= 1:
            _memo[key] = stored
            return stored
    # measured outside _lock (it takes the bundle's lock: holding both could deadlock against an explain)
    candidates = CANDIDATES.get(bundle.device.type, CANDIDATES["cpu"])
    size = choose(measure_batch_times(bundle, candidates))
    with _lock:
        size = _memo.setdefault(key, size)  # a concurrent first measurement wins; both are valid
        _write(path, {**_read(path), key: size})
    return size
