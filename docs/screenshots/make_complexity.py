"""Screenshot of the visual-complexity page (for the README).

Usage: .venv/bin/python docs/screenshots/make_complexity.py [PORT]
Starts ``streamlit run app.py`` headless, opens the page on the default sample, waits for features and maps.
"""

import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8767


def wait_idle(page, timeout=240_000):
    page.wait_for_timeout(1000)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout)
    page.wait_for_timeout(1500)


def shoot(page) -> Path:
    page.goto(f"http://localhost:{PORT}/", timeout=60_000)
    page.wait_for_selector("text=Lenses", timeout=120_000)
    wait_idle(page)
    page.goto(f"http://localhost:{PORT}/complexity", timeout=60_000)
    page.wait_for_selector("text=Where is the complexity?", timeout=240_000)
    wait_idle(page)
    # Plotly draws lazily: wait until the two bar charts and the four maps have their SVG.
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 6", timeout=120_000)
    page.mouse.wheel(0, 3000)
    page.wait_for_timeout(3000)
    out = ROOT / "docs" / "screenshots" / "complexity.png"
    page.screenshot(path=str(out), full_page=True)
    crop(out, page)
    return out


def crop(out: Path, page) -> None:
    """Keep the page from its title to the maps' caption, as a 256-colour PNG (small for the README)."""
    from PIL import Image

    main = page.locator('[data-testid="stMain"]').bounding_box()
    bottom = page.get_by_text("Raw values, one colour bar per map").bounding_box()
    img = Image.open(out).convert("RGB")
    box = (int(main["x"]), 0, img.width, min(img.height, int(bottom["y"] + bottom["height"] + 24)))
    img.crop(box).quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)


def main() -> None:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(PORT),
            "--server.fileWatcherType",
            "none",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(6)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1400, "height": 2300})
            try:
                shoot(page)
            except Exception:
                page.screenshot(path="/tmp/complexity_debug.png", full_page=True)
                raise
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
