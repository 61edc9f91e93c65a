"""Screenshot of the Lessons page in presenter mode (for the README): lesson 6, "red" over the steps.

Also prints how long a cached lesson takes to load in the browser (the second visit).

Usage: .venv/bin/python docs/screenshots/make_lessons.py [PORT]
"""

import sys
import time

from shot import OUT_DIR, run, snap, visit, wait_for

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8771
OUT = OUT_DIR / "lessons_presenter.png"
LESSON = "/lessons?lesson=red&present=1"


def shoot(page, base_url: str) -> None:
    visit(page, base_url, LESSON, "text=Each word's share", within=240_000, settle_ms=1500)
    start = time.perf_counter()
    page.goto(base_url + LESSON, timeout=60_000)  # a second visit: the lesson's results are cached
    wait_for(page, "text=Each word's share", within=60_000, settle_ms=0)
    print(f"cached lesson load in the browser: {time.perf_counter() - start - 1.0:.2f} s (after the 1 s wait)")
    page.keyboard.press("ArrowRight")  # → : the next lesson
    page.wait_for_selector("text=7. Content vs style", timeout=60_000)
    page.keyboard.press("ArrowLeft")
    wait_for(page, "text=6. What does the word", within=60_000, settle_ms=1500)
    snap(page, OUT, light=True)


if __name__ == "__main__":
    run(shoot, port=PORT, viewport=(1400, 1300), name="lessons")
