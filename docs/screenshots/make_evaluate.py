"""Screenshot of the Evaluate page after a BlockDigits leakage run (for the README).

Usage: .venv/bin/python docs/screenshots/make_evaluate.py [PORT]
Starts ``streamlit run app.py`` headless, opens Evaluate, presses Run with the default models and methods,
waits for the chart, the table and the example maps.
"""

import sys

from PIL import Image
from shot import OUT_DIR, open_home, run, wait_idle

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8768
OUT = OUT_DIR / "evaluate.png"


def shoot(page, base_url: str) -> None:
    open_home(page, base_url)
    page.goto(f"{base_url}/evaluate", timeout=60_000)
    page.wait_for_selector("text=Pick models and methods", timeout=120_000)
    wait_idle(page)
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("text=One image, every map", timeout=400_000)
    wait_idle(page, settle_ms=1500)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 1", timeout=120_000)
    page.wait_for_timeout(2000)
    page.screenshot(path=str(OUT), full_page=True)
    # the main area down to the last row of example maps (the page ends there)
    main = page.locator('[data-testid="stMain"]').bounding_box()
    last = page.locator('[data-testid="stImage"]').last.bounding_box()
    img = Image.open(OUT).convert("RGB")
    box = (int(main["x"]), 0, img.width, min(img.height, int(last["y"] + last["height"] + 40)))
    img.crop(box).quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(OUT, optimize=True)
    print(f"{OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    run(shoot, port=PORT, viewport=(1400, 3000), name="evaluate")
