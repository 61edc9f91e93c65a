"""Screenshot of the Diffusion classifier page after classifying a drawn scene (for the README).

Usage: .venv/bin/python docs/screenshots/make_diffusion_classifier.py [PORT]
Starts ``streamlit run app.py`` headless, opens the Diffusion classifier page, presses Classify on the default
drawn scene (its caption and five hard negatives), waits for the table, the error curves and the three maps.
"""

import sys

from PIL import Image
from shot import OUT_DIR, open_home, run, wait_idle

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8769
OUT = OUT_DIR / "diffusion_classifier.png"


def shoot(page, base_url: str) -> None:
    open_home(page, base_url)
    page.goto(f"{base_url}/diffusion_classifier", timeout=60_000)
    page.wait_for_selector("text=Pick an image and candidates", timeout=120_000)
    wait_idle(page)
    page.get_by_role("button", name="Classify").click()
    page.wait_for_selector("text=Cross-attention of", timeout=400_000)
    wait_idle(page, settle_ms=1500)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 1", timeout=120_000)
    page.wait_for_timeout(2000)
    page.screenshot(path=str(OUT), full_page=True)
    main = page.locator('[data-testid="stMain"]').bounding_box()
    last = page.locator('[data-testid="stImage"]').last.bounding_box()
    img = Image.open(OUT).convert("RGB")
    box = (int(main["x"]), 0, img.width, min(img.height, int(last["y"] + last["height"] + 80)))
    img.crop(box).quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(OUT, optimize=True)
    print(f"{OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    run(shoot, port=PORT, viewport=(1400, 2400), name="diffusion_classifier")
