#!/usr/bin/env bash
# How the shipped models/embedded/shapes_mmdit checkpoint was trained: one run of training.shapes_mmdit.train
# (seed 0, one CPU thread, float32), then its EMA weights exported in float16 and evaluated.
# Usage: training/shapes_mmdit/recipe.sh [OUT]
set -euo pipefail
OUT=${1:-.train/shapes_mmdit}
python -m training.shapes_mmdit.train --out "$OUT" --layers 4 --batch-size 16 --lr 5e-4 --warmup 200 \
  --steps 5500 --decay-from 4000 --time-limit 52 --ground-weight 0.1 --high-t-frac 0.25 --t-sampling logit-normal \
  --eval-every 1000 --eval-prompts 8 --eval-guidance 1.5 --save-every 250 --threads 1

# ship the EMA weights of the last step in float16, then measure them as shapes-t2i is measured
python -m training.shapes_mmdit.train --export-from "$OUT/last" --out models/embedded/shapes_mmdit
python -m training.shapes_t2i.evaluate --model shapes-mmdit --seeds 0 1 --out models/embedded/shapes_mmdit/EVAL.json
