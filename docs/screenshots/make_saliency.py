"""Screenshot of the saliency page with six methods side by side (for the README).

Usage: .venv/bin/python docs/screenshots/make_saliency.py [PORT]
Starts ``streamlit run app.py`` headless, picks the methods, presses Compute, waits for the run to end.
"""

import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
METHODS = ["gradient", "input_x_gradient", "guided_backprop", "deeplift", "gradcam", "gradcampp"]


def wait_idle(page, timeout=400_000):
    page.wait_for_timeout(1000)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout)
    page.wait_for_timeout(800)


def shoot(page) -> None:
    # Open the router first so the server knows the app uses st.navigation, then the page with the methods.
    page.goto(f"http://localhost:{PORT}/", timeout=60_000)
    page.wait_for_selector("text=Lenses", timeout=120_000)
    wait_idle(page)
    page.goto(f"http://localhost:{PORT}/saliency?methods={','.join(METHODS)}", timeout=60_000)
    page.wait_for_selector("text=Top-5 predictions", timeout=120_000)
    wait_idle(page)
    page.get_by_role("button", name="Compute").click()
    page.wait_for_selector("text=Shared colour scale", timeout=400_000)
    wait_idle(page)
    page.get_by_text("Teaching mode").click()
    wait_idle(page)
    out = ROOT / "docs" / "screenshots" / "saliency.png"
    page.screenshot(path=str(out), full_page=True, timeout=400_000, animations="disabled")
    crop(out, page)


def crop(out: Path, page) -> None:
    """Keep the page from its title to the download buttons, as a 256-colour PNG (small for the README)."""
    from PIL import Image

    main = page.locator('[data-testid="stMain"]').bounding_box()
    bottom = page.get_by_text("PNG of the grid").bounding_box()
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
            page = browser.new_page(viewport={"width": 1400, "height": 3000})
            page.set_default_timeout(400_000)
            try:
                shoot(page)
            except Exception:
                page.screenshot(path="/tmp/saliency_debug.png", full_page=True, timeout=400_000)
                raise
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
