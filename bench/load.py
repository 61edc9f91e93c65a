"""Benchmark: many sessions on one shared model: latency percentiles, and a display change while others compute.

    .venv/bin/python -m bench.load [--rounds 3] [--threads 2] [--steps 25] [--json]

Sessions are threads of one process, as Streamlit runs them (one script thread per session), using the app's
shared models (``components.loaders``: one EfficientNet-Lite0 and one shapes text-to-image model for every
session, each with its first-come-first-served line).

1. For 1, 4 and 8 sessions: every session asks at the same moment for one gradient map (a different sample
   image each), ``--rounds`` times; then the same for one ``--steps``-step generation (a different prompt
   each). Latency = from the request to its result, waiting in the line included. p50 and p95 over all
   requests. The reference is 8 serial runs (one after another, each in a new thread as Streamlit runs each
   button press), timed in alternation with the 8-session rounds (median): target p95 at 8 sessions ≤ 1.1 × those 8 serial runs (the line adds nothing to
   the work it serialises).
2. A display change while 7 other sessions compute: AppTest opens the saliency page, computes its maps, and
   then changes a display option (values mode, shared scale, clipping, opacity) while 4 sessions compute
   gradient maps and 3 generate, all on the same shared models. It times the rerun of the whole page (an
   upper bound on the fragment a browser reruns; the browser's drawing is not included). Target < 0.5 s.

``--json`` prints every number as JSON: per workload and session count ``p50_s``, ``p95_s``; the serial
references; ``display_change_s`` (median) and its p95.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = (
    "a red circle",
    "a blue square",
    "a green triangle",
    "a yellow circle",
    "a red square to the left of a blue circle",
    "a green circle above a yellow square",
    "a blue triangle below a red circle",
    "a yellow square to the right of a green triangle",
)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


class Workloads:
    """The two requests a session makes, on the app's shared models."""

    def __init__(self, steps: int) -> None:
        from components import loaders
        from glimpse.images import sample_images

        self.classifier = loaders.classifier("efficientnet-lite0", "cpu")
        self.pipeline = loaders.pipeline("shapes-t2i", "cpu")
        self.images = list(sample_images().values())
        self.steps = steps

    def gradient(self, k: int) -> None:
        from glimpse.saliency import explain
        from glimpse.work_queue import job

        with job("gradient map", session=str(k)):
            explain(self.classifier, self.images[k % len(self.images)], [("gradient", {})])

    def generation(self, k: int) -> None:
        from glimpse.attention import generate_with_attention
        from glimpse.work_queue import job

        with job("generation", session=str(k)):
            generate_with_attention(self.pipeline, PROMPTS[k % len(PROMPTS)], seed=k, steps=self.steps)


def latencies(fn, sessions: int, rounds: int) -> list[float]:
    """Each round, ``sessions`` threads ask at the same moment; the time each waited for its result."""
    out: list[float] = []
    with ThreadPoolExecutor(sessions) as pool:
        for r in range(rounds):
            barrier = threading.Barrier(sessions)

            def one(k: int, barrier=barrier, r=r) -> float:
                barrier.wait()
                start = time.perf_counter()
                fn(r * sessions + k)
                return time.perf_counter() - start

            out += list(pool.map(one, range(sessions)))
    return out


def serial(fn, n: int = 8) -> float:
    """``n`` runs one after another, each in a new thread: Streamlit runs every button press in a new script
    thread, and a thread's first torch calls cost more than later ones (measured: about 40 ms more for a
    gradient map here), so a warm thread would not be the app's serial run."""
    start = time.perf_counter()
    for k in range(n):
        t = threading.Thread(target=fn, args=(k,))
        t.start()
        t.join()
    return time.perf_counter() - start


def display_change(work: Workloads, repeat: int) -> list[float]:
    """Display-option reruns of the saliency page while 7 other sessions compute on the same models."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    at.switch_page("app_pages/saliency.py").run()
    next(b for b in at.button if b.label == "Compute").click().run()
    if at.exception or at.error:
        raise SystemExit(f"the page failed: {list(at.exception) or [e.value for e in at.error]}")
    changes = [
        lambda: at.radio(key="sal_mode").set_value("absolute"),
        lambda: at.toggle(key="sal_shared").set_value(True),
        lambda: at.slider(key="sal_clip").set_value(95.0),
        lambda: at.slider(key="sal_opacity").set_value(0.3),
        lambda: at.radio(key="sal_mode").set_value("signed"),
        lambda: at.toggle(key="sal_shared").set_value(False),
        lambda: at.slider(key="sal_clip").set_value(99.0),
        lambda: at.slider(key="sal_opacity").set_value(0.6),
    ]
    stop = threading.Event()
    busy = {"gradient": 0, "generation": 0}

    def other(kind: str, k: int) -> None:
        while not stop.is_set():
            getattr(work, kind)(k)
            busy[kind] += 1

    others = [threading.Thread(target=other, args=("gradient", k)) for k in range(4)]
    others += [threading.Thread(target=other, args=("generation", k)) for k in range(3)]
    for t in others:
        t.start()
    time.sleep(2.0)  # every line is full
    times = []
    try:
        for _ in range(repeat):
            for change in changes:
                change()
                start = time.perf_counter()
                at.run()
                times.append(time.perf_counter() - start)
                if at.exception:
                    raise SystemExit(f"display change failed: {at.exception}")
    finally:
        stop.set()
        for t in others:
            t.join()
    print(
        f"  (meanwhile the 7 other sessions finished {busy['gradient']} gradient maps, {busy['generation']} generations)"
    )
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="simultaneous requests per session and session count")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--steps", type=int, default=25, help="denoising steps of a generation")
    ap.add_argument("--repeat", type=int, default=3, help="rounds over the 8 display changes")
    ap.add_argument("--json", action="store_true", help="print every number as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from components.loaders import limit_malloc_arenas

    print(f"malloc arenas capped as in the app: {limit_malloc_arenas()}")
    work = Workloads(args.steps)
    report: dict = {"threads": args.threads, "steps": args.steps, "rounds": args.rounds}
    for name in ("gradient", "generation"):
        fn = getattr(work, name)
        fn(0)  # warm-up
        rows = {}
        for sessions in (1, 4):
            lat = latencies(fn, sessions, args.rounds)
            rows[str(sessions)] = {"p50_s": percentile(lat, 50), "p95_s": percentile(lat, 95), "requests": len(lat)}
        # 8 sessions alternate with their reference, 8 serial runs, so that load drift hits both alike
        lat, serials = [], []
        for _ in range(args.rounds):
            serials.append(serial(fn))
            lat += latencies(fn, 8, 1)
        rows["8"] = {"p50_s": percentile(lat, 50), "p95_s": percentile(lat, 95), "requests": len(lat)}
        serial_8 = statistics.median(serials)
        report[name] = {
            "sessions": rows,
            "serial_8_s": serial_8,
            "serial_8_runs_s": serials,
            "p95_8_over_serial_8": rows["8"]["p95_s"] / serial_8,
        }
    times = display_change(work, args.repeat)
    report["display_change_s"] = statistics.median(times)
    report["display_change_p95_s"] = percentile(times, 95)
    report["display_changes"] = len(times)

    for name, label in (("gradient", "gradient map"), ("generation", f"{args.steps}-step generation")):
        r = report[name]
        print(f"\n{label}: 8 serial runs {r['serial_8_s']:.2f} s")
        print(f"{'sessions':>9} {'p50 s':>8} {'p95 s':>8}")
        for sessions, row in r["sessions"].items():
            print(f"{sessions:>9} {row['p50_s']:>8.3f} {row['p95_s']:>8.3f}")
        print(f"p95 at 8 sessions ÷ 8 serial runs: {r['p95_8_over_serial_8']:.2f} (target ≤ 1.10)")
    print(
        f"\ndisplay change while 7 sessions compute: median {report['display_change_s']:.3f} s, p95 "
        f"{report['display_change_p95_s']:.3f} s over {len(times)} changes (target < 0.5 s)"
    )
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
