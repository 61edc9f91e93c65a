"""Benchmark: how long the saliency page takes to re-render after a display option changes.

Streamlit's AppTest opens the page, computes six maps once (gradient, Input×Gradient, Grad-CAM, HiResCAM,
Layer-CAM, Grad-CAM++), then changes display options (signed / absolute / positive, shared scale,
clipping, opacity, colour map) and times each rerun of the script: building the six plotly overlays with
their colour bars, the captions and the downloads, serialised for the browser. It reruns the whole page
(in the browser the display options sit in a fragment, which reruns less), so this is an upper bound on the
server side; the browser's drawing is not included. Target: ≤ 0.2 s per change.

    .venv/bin/python -m bench.saliency_display [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from components.saliency.services import CALLS_KEY

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["gradient", "input_x_gradient", "gradcam", "hirescam", "layercam", "gradcampp"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="rounds over the display changes")
    args = ap.parse_args(argv)

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("app_pages/saliency.py")
    at.run()
    at.multiselect(key="sal_methods").set_value(METHODS)
    at.run()
    next(b for b in at.button if b.label == "Compute").click()
    start = time.perf_counter()
    at.run()
    compute_s = time.perf_counter() - start
    if at.exception or at.error:
        raise SystemExit(f"the page failed: {list(at.exception) or [e.value for e in at.error]}")

    changes = [
        ("mode absolute", lambda: at.radio(key="sal_mode").set_value("absolute")),
        ("mode positive", lambda: at.radio(key="sal_mode").set_value("positive")),
        ("mode signed", lambda: at.radio(key="sal_mode").set_value("signed")),
        ("shared scale on", lambda: at.toggle(key="sal_shared").set_value(True)),
        ("clip 95", lambda: at.slider(key="sal_clip").set_value(95.0)),
        ("opacity 0.3", lambda: at.slider(key="sal_opacity").set_value(0.3)),
        ("shared scale off", lambda: at.toggle(key="sal_shared").set_value(False)),
        ("clip 99", lambda: at.slider(key="sal_clip").set_value(99.0)),
        ("opacity 0.6", lambda: at.slider(key="sal_opacity").set_value(0.6)),
    ]
    times: dict[str, list[float]] = {name: [] for name, _ in changes}
    for _ in range(args.repeat):
        for name, change in changes:
            change()
            start = time.perf_counter()
            at.run()
            times[name].append(time.perf_counter() - start)
            if at.exception:
                raise SystemExit(f"{name}: {at.exception}")
    if at.session_state[CALLS_KEY] != 1:
        raise SystemExit("a display change recomputed the maps")
    every = [t for ts in times.values() for t in ts]
    print(f"six maps computed once in {compute_s:.2f} s (compute calls: {at.session_state[CALLS_KEY]})")
    print(f"{'display change':<24}{'median s':>10}")
    for name, ts in times.items():
        print(f"{name:<24}{statistics.median(ts):>10.3f}")
    print(
        f"display re-render, whole page: median {statistics.median(every):.3f} s, "
        f"90th percentile {statistics.quantiles(every, n=10)[-1]:.3f} s, max {max(every):.3f} s "
        f"over {len(every)} changes (target <= 0.2 s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
