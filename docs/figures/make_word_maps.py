"""The word-map figure of the README (issue 27): held-out captions drawn by the embedded UNet (shapes-t2i) and the
embedded MMDiT (shapes-mmdit), each colour and shape word's map over the image, and the MMDiT's ConceptAttention
maps of the same words.

Usage: .venv/bin/python docs/figures/make_word_maps.py [--out docs/figures/word_maps.png] [--captions N] [--seed S]

Every map is what the Cross-attention page shows with its defaults (``word_maps`` of the run's trace at 32×32:
all steps and layers, heads averaged), min-max normalised; the white contour is the 0.4 threshold that the cards'
IoU uses. The captions are the first N scenes of ``HELD_OUT_CAPTIONS`` (every other entry: the list gives each
scene in both phrasings), never seen in training. Takes about 15 s on one CPU thread.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from any folder
    sys.path.insert(0, str(ROOT))

THRESHOLD = 0.4  # the cards' threshold (glimpse.map_metrics.binarise on min-max normalised maps)


def load_models():
    """(shapes-t2i, shapes-mmdit) on the CPU, loaded once for every caption."""
    from models.diffusion import load_pipeline

    return load_pipeline("shapes-t2i", device="cpu"), load_pipeline("shapes-mmdit", device="cpu")


def rows_for(models, caption: str, seed: int) -> list[tuple[str, np.ndarray, list[str], np.ndarray]]:
    """(row label, image, words, their maps at 32×32) for the UNet, the MMDiT and the MMDiT's ConceptAttention;
    ``models`` from :func:`load_models`. The words are the caption's colour and shape words, in order."""
    from glimpse.attention import generate_with_attention, word_maps
    from glimpse.attention.concept import generate_with_concepts
    from glimpse.evaluation.shapes_scenes import COLOURS, SHAPES

    unet, mmdit = models
    run = generate_with_attention(unet, caption, seed=seed)
    keep = [i for i, w in enumerate(run.trace.words) if w in COLOURS or w in SHAPES]
    words = [run.trace.words[i] for i in keep]
    both = generate_with_concepts(mmdit, caption, concepts=list(dict.fromkeys(words)), seed=seed)
    if both.trace.words != run.trace.words:  # the MMDiT carries a copy of the UNet's word-level tokenizer
        raise ValueError(f"the two models split {caption!r} into different words")
    concept_maps = word_maps(both.concepts, size=32)
    index = {w: i for i, w in enumerate(both.concepts.words)}
    return [
        ("shapes-t2i (UNet)\ncross-attention", run.image, words, word_maps(run.trace, size=32)[keep]),
        ("shapes-mmdit (MMDiT)\ncross-attention", both.image, words, word_maps(both.trace, size=32)[keep]),
        ("shapes-mmdit\nConceptAttention", both.image, words, np.stack([concept_maps[index[w]] for w in words])),
    ]


def figure(captions: list[str], seed: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from glimpse.display import shown_values

    models = load_models()
    blocks = [(c, rows_for(models, c, seed)) for c in captions]
    n_rows = sum(len(rows) for _, rows in blocks)
    n_cols = 1 + max(len(words) for _, rows in blocks for _, _, words, _ in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.6 * n_cols + 1.4, 1.6 * n_rows + 0.4 * len(blocks)))
    axes = np.atleast_2d(axes)
    r = 0
    for caption, rows in blocks:
        for k, (label, image, words, maps) in enumerate(rows):
            ax = axes[r, 0]
            ax.imshow(image, interpolation="nearest")
            ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
            if k == 0:
                ax.set_title(f"“{caption}” (seed {seed})", fontsize=9, loc="left", pad=16, fontweight="bold")
            for j in range(1, n_cols):
                axes[r, j].axis("off")
            for j, (word, values) in enumerate(zip(words, maps), start=1):
                ax = axes[r, j]
                shown = shown_values(np.asarray(values, dtype=np.float64), "minmax")
                ax.imshow(image, interpolation="nearest")
                ax.imshow(shown, cmap="inferno", alpha=0.6, vmin=0, vmax=1, interpolation="bilinear")
                ax.contour(shown, levels=[THRESHOLD], colors="white", linewidths=0.8)
                ax.set_title(word, fontsize=8)
                ax.axis("on")
            for ax in axes[r]:
                ax.set_xticks([])
                ax.set_yticks([])
            r += 1
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> Path:
    import torch

    from glimpse.evaluation.shapes_scenes import HELD_OUT_CAPTIONS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "figures" / "word_maps.png"))
    p.add_argument("--captions", type=int, default=3, help="how many held-out captions (from the first)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not 1 <= args.captions <= len(HELD_OUT_CAPTIONS):
        p.error(f"--captions: between 1 and {len(HELD_OUT_CAPTIONS)}")
    torch.set_num_threads(1)
    # every other caption: the held-out list gives each scene in both phrasings, one after the other
    captions = list(HELD_OUT_CAPTIONS[::2][: args.captions])
    fig = figure(captions, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(out)
    return out


if __name__ == "__main__":
    main()
