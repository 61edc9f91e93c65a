"""Screenshot of the Diffusion classifier page after classifying a drawn scene (for the README).

Usage: .venv/bin/python docs/screenshots/make_diffusion_classifier.py [PORT]
Starts ``streamlit run app.py`` headless, opens the Diffusion classifier page, presses Classify on the default
drawn scene (its caption and five hard negatives), waits for the table, the error curves and the three maps.
"""

import sys

from shot import OUT_DIR, results_page, run

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8769
OUT = OUT_DIR / "diffusion_classifier.png"

shoot = results_page(
    "/diffusion_classifier", "text=Pick an image and candidates", "Classify", "text=Cross-attention of", OUT, margin=80
)


if __name__ == "__main__":
    run(shoot, port=PORT, viewport=(1400, 2400), name="diffusion_classifier")
