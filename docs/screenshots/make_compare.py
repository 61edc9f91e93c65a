"""Screenshot of the Compare page after one generate -> classify -> explain run (for the README).

Usage: .venv/bin/python docs/screenshots/make_compare.py [PORT]
Starts ``streamlit run app.py`` headless, opens the Compare page, switches to "Generate from a prompt",
types the prompt, presses Compute and waits for the run; writes docs/screenshots/compare.png.
"""

import os
import sys

from shot import OUT_DIR, keep_light, open_home, run, snap, wait_for, wait_idle

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8768
PROMPT = "a red circle to the left of a blue square"
OUT = OUT_DIR / "compare.png"


def shoot(page, base_url: str) -> None:
    open_home(page, base_url)
    page.get_by_role("link", name="Compare", exact=True).first.click(timeout=120_000)
    page.get_by_text("Generate from a prompt").click(timeout=180_000)
    wait_idle(page)
    page.locator('input[aria-label="Prompt (embedded shapes model)"]').fill(PROMPT, timeout=60_000)
    page.get_by_role("button", name="Compute").click()
    timeout = int(os.environ.get("SHOT_TIMEOUT", "300000"))
    # pause_ms: plotly draws after the script run ends
    wait_for(page, "text=Generate → classify → explain", within=timeout, pause_ms=4000)
    snap(page, OUT)


if __name__ == "__main__":
    run(shoot, port=PORT, viewport=(1400, 3200), name="compare")
    keep_light(OUT)
