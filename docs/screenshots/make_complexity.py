"""Screenshot of the visual-complexity page (for the README).

Usage: .venv/bin/python docs/screenshots/make_complexity.py [PORT]
Starts ``streamlit run app.py`` headless, opens the page on the default sample, waits for features and maps.
"""

import sys

from shot import OUT_DIR, crop_main, run, snap, visit

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8767
OUT = OUT_DIR / "complexity.png"


def shoot(page, base_url: str) -> None:
    # plots=6: the two bar charts and the four maps
    visit(page, base_url, "/complexity", "text=Where is the complexity?", within=240_000, settle_ms=1500, plots=6)
    page.mouse.wheel(0, 3000)
    page.wait_for_timeout(3000)
    snap(page, OUT)
    crop_main(OUT, page, "Raw values, one colour bar per map")


if __name__ == "__main__":
    run(shoot, port=PORT, viewport=(1400, 2300), name="complexity")
