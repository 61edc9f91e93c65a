"""Screenshot of the cross-attention page after one generation (for the README).

Usage: [GLIMPSE_SHOT_MODEL=FOLDER] .venv/bin/python docs/screenshots/make_attention.py [PORT]
Starts ``streamlit run app.py`` headless, opens the Cross-attention page, types the prompt, presses
Generate and waits for the run to end; writes docs/screenshots/attention.png.
"""

import os
import sys

import numpy as np
from PIL import Image
from shot import OUT_DIR, keep_light, open_home, run, snap, wait_for, wait_idle

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8766
PROMPT = "a red circle to the left of a blue square"
OUT = OUT_DIR / "attention.png"
MODEL = os.environ.get("GLIMPSE_SHOT_MODEL", "")  # default: the embedded shapes-t2i model


def shoot(page, base_url: str) -> None:
    open_home(page, base_url)
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
    wait_for(page, "text=Attention mass over time", within=240_000)
    page.get_by_text("Animation over timesteps (GIF)").click()
    wait_idle(page)
    snap(page, OUT)


def crop_empty_bottom() -> None:
    """Crop the empty bottom of the tall viewport (the sidebar stays: it shows the model and device)."""
    img = Image.open(OUT).convert("RGB")
    main_area = np.asarray(img)[:, 400:]
    rows = np.nonzero((np.abs(main_area.astype(int) - main_area[-1, 0].astype(int)).sum(axis=2) > 30).any(axis=1))[0]
    if rows.size:
        img.crop((0, 0, img.width, min(img.height, int(rows[-1]) + 40))).save(OUT, optimize=True)


if __name__ == "__main__":
    run(shoot, port=PORT, viewport=(1400, 3300), name="attention")
    crop_empty_bottom()
    keep_light(OUT)
