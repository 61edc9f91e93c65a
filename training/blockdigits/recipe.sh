#!/usr/bin/env bash
# How the shipped models/embedded/blockdigits checkpoints were trained (CPU, float32, deterministic from the
# seed; two threads). Usage: training/blockdigits/recipe.sh [OUT]   (default: the shipped folder)
set -euo pipefail
OUT=${1:-models/embedded/blockdigits}
# standard training: Adam 1e-3, cosine decay, 15 epochs of two placements per digit (under a minute);
# --eps only sets the PGD attack its robust accuracy is measured with
python -m training.blockdigits.train --mode standard --eps 0.2 --epochs 15 --out "$OUT"
# adversarial training (PGD, l-inf radius 0.2 in pixel units, 7 steps, radius ramped over 5 epochs), 20 epochs
python -m training.blockdigits.train --mode robust --norm linf --eps 0.2 --epochs 20 --out "$OUT"
