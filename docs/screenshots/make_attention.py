"""Screenshot of the cross-attention page after one generation (for the README).

Usage: [GLIMPSE_SHOT_MODEL=FOLDER] .venv/bin/python docs/screenshots/make_attention.py [PORT]
Starts ``streamlit run app.py`` headless, opens the Cross-attention page, types the prompt, presses
Generate and waits for the run to end; writes docs/screenshots/attention.png.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8766
PROMPT = "a red circle to the left of a blue square"
OUT = ROOT / "docs" / "screenshots" / "attention.png"
MODEL = os.environ.get("GLIMPSE_SHOT_MODEL", "")  # default: the embedded shapes-t2i model


def wait_idle(page, timeout=240_000):
    page.wait_for_timeout(1000)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout)
    page.wait_for_timeout(800)


def shoot(page) -> None:
    # open the app at its root and use the navigation: st.navigation owns the page routes
    page.goto(f"http://localhost:{PORT}/", timeout=60_000)
    # let the home page's first run finish: two script threads importing transformers at once can break it
    page.wait_for_selector("text=Glimpse", timeout=120_000)
    wait_idle(page)
    page.get_by_role("link", name="Cross-attention").first.click(timeout=120_000)
    prompt = page.locator('input[aria-label="Prompt"]')
    prompt.wait_for(timeout=180_000)
    wait_idle(page)
    if MODEL:  # e.g. a training checkpoint folder, loaded through the page's model field
        page.get_by_text("Model:").first.click(timeout=120_000)
        page.locator('input[aria-label="Diffusers model id"]').fill(MODEL)
        page.get_by_role("button", name="Load").click()
        wait_idle(page)
        prompt.wait_for(timeout=180_000)
    prompt.fill(PROMPT, timeout=60_000)
    page.get_by_role("button", name="Generate").click()
    page.wait_for_selector("text=Attention mass over time", timeout=240_000)
    wait_idle(page)
    page.get_by_text("Animation over timesteps (GIF)").click()
    wait_idle(page)
    page.screenshot(path=str(OUT), full_page=True)


def main() -> None:
    server = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
            "--server.port", str(PORT), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        ],
        cwd=ROOT,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
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
            page = browser.new_page(viewport={"width": 1400, "height": 3300})
            try:
                shoot(page)
            except Exception:
                page.screenshot(path="/tmp/attention_failed.png")  # what the page showed when it got stuck
                raise
            browser.close()
    finally:
        server.kill()
        server.wait(10)
    # crop the empty bottom of the tall viewport, and keep the README light (palette PNG when large)
    img = Image.open(OUT).convert("RGB")
    main_area = np.asarray(img)[:, 400:]
    rows = np.nonzero((np.abs(main_area.astype(int) - main_area[-1, 0].astype(int)).sum(axis=2) > 30).any(axis=1))[0]
    if rows.size:
        img = img.crop((0, 0, img.width, min(img.height, int(rows[-1]) + 40)))
        img.save(OUT, optimize=True)
    if OUT.stat().st_size > 400_000:
        img.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(OUT, optimize=True)
    print(f"{OUT} ({OUT.stat().st_size / 1e3:.0f} kB, {img.size[0]}x{img.size[1]})")


if __name__ == "__main__":
    main()
