"""Screenshot of the visual-complexity page (for the README).

Usage: .venv/bin/python docs/screenshots/make_complexity.py [PORT]
Starts ``streamlit run app.py`` headless, opens the page on the default sample, waits for features and maps.
"""

import sys

from shot import OUT_DIR, crop_main, open_home, run, wait_idle

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8767
OUT = OUT_DIR / "complexity.png"


def shoot(page, base_url: str) -> None:
    open_home(page, base_url)
    page.goto(f"{base_url}/complexity", timeout=60_000)
    page.wait_for_selector("text=Where is the complexity?", timeout=240_000)
    wait_idle(page, settle_ms=1500)
    # Plotly draws lazily: wait until the two bar charts and the four maps have their SVG.
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 6", timeout=120_000)
    page.mouse.wheel(0, 3000)
    page.wait_for_timeout(3000)
    page.screenshot(path=str(OUT), full_page=True)
    crop_main(OUT, page, "Raw values, one colour bar per map")


if __name__ == "__main__":
    run(shoot, port=PORT, viewport=(1400, 2300), name="complexity")
