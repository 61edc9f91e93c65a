"""Screenshot of the home page (for the README): the lens cards and the classifier's top-5 for the sample.

Usage: .venv/bin/python docs/screenshots/make_home.py [PORT]
"""

import sys

from shot import OUT_DIR, keep_light, open_home, run, wait_idle

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8769
OUT = OUT_DIR / "home.png"


def shoot(page, base_url: str) -> None:
    open_home(page, base_url)
    page.wait_for_selector('[data-testid="stDataFrame"]', timeout=240_000)
    wait_idle(page, settle_ms=1500)
    page.screenshot(path=str(OUT), full_page=True)
    keep_light(OUT)


if __name__ == "__main__":
    run(shoot, port=PORT, viewport=(1400, 1700), name="home")
