"""What the README screenshot scripts share: a headless Streamlit server, Chromium, waits and PNG size.

Each ``make_*.py`` supplies only its ``shoot(page, base_url)`` (the clicks) and calls :func:`run`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "docs" / "screenshots"


def wait_idle(page, timeout: int = 240_000, settle_ms: int = 800) -> None:
    """Wait until Streamlit's "running" widget is gone, then let plotly draw."""
    page.wait_for_timeout(1000)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout)
    page.wait_for_timeout(settle_ms)


def open_home(page, base_url: str) -> None:
    """Open the router first (st.navigation owns the page routes) and let its first run finish: two
    script threads importing transformers at once can break it."""
    page.goto(base_url + "/", timeout=60_000)
    page.wait_for_selector("text=Lenses", timeout=120_000)
    wait_idle(page)


def wait_for(page, selector: str, *, within: int, plots: int = 0, pause_ms: int = 0, **idle) -> None:
    """Wait ``within`` ms for ``selector``, then :func:`wait_idle` (``idle``: its ``timeout``, ``settle_ms``);
    with ``plots``, until that many plotly SVGs are drawn (they draw lazily); then ``pause_ms`` more."""
    page.wait_for_selector(selector, timeout=within)
    wait_idle(page, **idle)
    if plots:
        page.wait_for_function(
            f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {plots}", timeout=120_000
        )
    if pause_ms:
        page.wait_for_timeout(pause_ms)


def visit(page, base_url: str, path: str, selector: str, *, within: int = 120_000, **wait) -> None:
    """Open the router (:func:`open_home`), then ``base_url + path``, and :func:`wait_for` ``selector``."""
    open_home(page, base_url)
    page.goto(base_url + path, timeout=60_000)
    wait_for(page, selector, within=within, **wait)


def press(page, button: str, selector: str, *, within: int = 400_000, **wait) -> None:
    """Click the button named ``button`` and :func:`wait_for` ``selector`` (the run's result)."""
    page.get_by_role("button", name=button).click()
    wait_for(page, selector, within=within, **wait)


def snap(page, out: Path, *, light: bool = False, **screenshot) -> None:
    """Screenshot the full page to ``out``; with ``light``, :func:`keep_light` it."""
    page.screenshot(path=str(out), full_page=True, **screenshot)
    if light:
        keep_light(out)


def results_page(path: str, ready: str, button: str, done: str, out: Path, *, margin: int) -> Callable:
    """The ``shoot`` of a page that computes on a button: open ``path`` (ready when ``ready`` shows), press
    ``button``, wait for ``done`` and the first plot, screenshot to ``out``, crop to the last image."""

    def shoot(page, base_url: str) -> None:
        visit(page, base_url, path, ready)
        press(page, button, done, settle_ms=1500, plots=1, pause_ms=2000)
        snap(page, out)
        crop_to_last_image(out, page, margin)

    return shoot


def run(shoot: Callable, *, port: int, viewport: tuple[int, int], name: str) -> None:
    """Start ``streamlit run app.py`` headless on ``port`` (offline, one OpenMP thread: shared CPUs), open
    Chromium at ``viewport`` and call ``shoot(page, base_url)``; on failure save /tmp/NAME_failed.png."""
    server = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
            "--server.port", str(port), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        ],
        cwd=ROOT,
        env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(120):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.set_default_timeout(400_000)
            try:
                shoot(page, f"http://localhost:{port}")
            except Exception:
                page.screenshot(path=f"/tmp/{name}_failed.png", full_page=True)  # what the page showed when stuck
                raise
            finally:
                browser.close()
    finally:
        server.kill()
        server.wait(10)


def keep_light(out: Path, limit: int = 400_000) -> None:
    """Re-save a large screenshot as a 256-colour PNG (keeps the README light) and print its size."""
    img = Image.open(out)
    if out.stat().st_size > limit:
        img.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(out, optimize=True)
    print(f"{out} ({out.stat().st_size / 1e3:.0f} kB, {img.size[0]}x{img.size[1]})")


def crop_main(out: Path, page, bottom, margin: int = 24) -> None:
    """Keep the main area from the top down to ``margin`` px below ``bottom`` (a locator, or the text of the
    element to find; the sidebar and the empty bottom go), as a 256-colour PNG."""
    main = page.locator('[data-testid="stMain"]').bounding_box()
    bottom = (page.get_by_text(bottom) if isinstance(bottom, str) else bottom).bounding_box()
    img = Image.open(out).convert("RGB")
    box = (int(main["x"]), 0, img.width, min(img.height, int(bottom["y"] + bottom["height"] + margin)))
    img.crop(box).quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)


def crop_to_last_image(out: Path, page, margin: int) -> None:
    """:func:`crop_main` down to the page's last image (where a results page ends), and print the size."""
    crop_main(out, page, page.locator('[data-testid="stImage"]').last, margin)
    print(f"{out} ({out.stat().st_size / 1e3:.0f} kB)")
