"""Screenshot of the Evaluate page after a BlockDigits leakage run (for the README).

Usage: .venv/bin/python docs/screenshots/make_evaluate.py [PORT]
Starts ``streamlit run app.py`` headless, opens Evaluate, presses Run with the default models and methods,
waits for the chart, the table and the example maps.
"""

import sys

from shot import OUT_DIR, results_page, run

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8768
OUT = OUT_DIR / "evaluate.png"
# cropped below the last row of example maps
shoot = results_page("/evaluate", "text=Pick models and methods", "Run", "text=One image, every map", OUT, margin=40)


if __name__ == "__main__":
    run(shoot, port=PORT, viewport=(1400, 3000), name="evaluate")
