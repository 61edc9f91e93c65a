"""Screenshot of the home page (for the README): the lens cards and the classifier's top-5 for the sample.

Usage: .venv/bin/python docs/screenshots/make_home.py [PORT]
"""

import sys

from shot import OUT_DIR, open_home, run, snap, wait_for

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8769
OUT = OUT_DIR / "home.png"


def shoot(page, base_url: str) -> None:
    open_home(page, base_url)
    wait_for(page, '[data-testid="stDataFrame"]', within=240_000, settle_ms=1500)
    snap(page, OUT, light=True)


if __name__ == "__main__":
    run(shoot, port=PORT, viewport=(1400, 1700), name="home")
