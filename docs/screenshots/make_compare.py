"""Screenshot of the Compare page after one generate -> classify -> explain run (for the README).

Usage: .venv/bin/python docs/screenshots/make_compare.py [PORT]
Starts ``streamlit run app.py`` headless, opens the Compare page, switches to "Generate from a prompt",
types the prompt, presses Compute and waits for the run; writes docs/screenshots/compare.png.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8768
PROMPT = "a red circle to the left of a blue square"
OUT = ROOT / "docs" / "screenshots" / "compare.png"


def wait_idle(page, timeout=240_000):
    page.wait_for_timeout(1000)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout)
    page.wait_for_timeout(800)


def shoot(page) -> None:
    page.goto(f"http://localhost:{PORT}/", timeout=60_000)
    page.get_by_role("link", name="Compare", exact=True).first.click(timeout=120_000)
    page.get_by_text("Generate from a prompt").click(timeout=180_000)
    wait_idle(page)
    page.locator('input[aria-label="Prompt (embedded shapes model)"]').fill(PROMPT, timeout=60_000)
    page.get_by_role("button", name="Compute").click()
    page.wait_for_selector("text=Generate → classify → explain", timeout=int(os.environ.get("SHOT_TIMEOUT", "300000")))
    wait_idle(page)
    page.wait_for_timeout(4000)  # plotly draws after the script run ends
    page.screenshot(path=str(OUT), full_page=True)


def main() -> None:
    server = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
            "--server.port", str(PORT), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        ],
        cwd=ROOT,
        env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"),  # shared CPUs: one thread avoids OpenMP spin-waits
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(120):
            try:
                socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
                break
            except OSError:
                time.sleep(1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium")
            shoot(browser.new_page(viewport={"width": 1400, "height": 3200}))
            browser.close()
    finally:
        server.kill()
        server.wait(10)
    img = Image.open(OUT)
    if OUT.stat().st_size > 400_000:
        img.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(OUT, optimize=True)
    print(f"{OUT} ({OUT.stat().st_size / 1e3:.0f} kB, {img.size[0]}x{img.size[1]})")


if __name__ == "__main__":
    main()
