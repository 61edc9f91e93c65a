"""Screenshot of the Evaluate page after a BlockDigits leakage run (for the README).

Usage: .venv/bin/python docs/screenshots/make_evaluate.py [PORT]
Starts ``streamlit run app.py`` headless, opens Evaluate, presses Run with the default models and methods,
waits for the chart, the table and the example maps.
"""

import sys

from shot import OUT_DIR, crop_to_last_image, press, run, snap, visit

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8768
OUT = OUT_DIR / "evaluate.png"


def shoot(page, base_url: str) -> None:
    visit(page, base_url, "/evaluate", "text=Pick models and methods")
    press(page, "Run", "text=One image, every map", settle_ms=1500, plots=1, pause_ms=2000)
    snap(page, OUT)
    # down to the last row of example maps
    crop_to_last_image(OUT, page, margin=40)


if __name__ == "__main__":
    run(shoot, port=PORT, viewport=(1400, 3000), name="evaluate")
