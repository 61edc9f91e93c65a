"""Screenshot of the saliency page with six methods side by side (for the README).

Usage: .venv/bin/python docs/screenshots/make_saliency.py [PORT]
Starts ``streamlit run app.py`` headless, picks the methods, presses Compute, waits for the run to end.
"""

import sys

from shot import OUT_DIR, crop_main, press, run, snap, visit, wait_idle

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
METHODS = ["gradient", "input_x_gradient", "guided_backprop", "deeplift", "gradcam", "gradcampp"]
OUT = OUT_DIR / "saliency.png"


def shoot(page, base_url: str) -> None:
    visit(page, base_url, f"/saliency?methods={','.join(METHODS)}", "text=Top-5 predictions", timeout=400_000)
    press(page, "Compute", "text=Shared colour scale", timeout=400_000)
    page.get_by_text("Teaching mode").click()
    wait_idle(page, timeout=400_000)
    snap(page, OUT, timeout=400_000, animations="disabled")
    crop_main(OUT, page, "PNG of the grid")


if __name__ == "__main__":
    run(shoot, port=PORT, viewport=(1400, 3000), name="saliency")
