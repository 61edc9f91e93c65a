#!/usr/bin/env bash
# How the shipped models/embedded/shapes_mmdit checkpoint was trained: two phases of training.shapes_mmdit.train
# (seed 0, one CPU thread, float32, batch 16), the second resuming the first's OUT/state.pt, then the EMA
# weights exported in float16 and evaluated as shapes-t2i is. Every phase re-seeds data and noise from
# (seed, step). About 0.55 s per step on one thread (1.0-1.3 s while the second core was busy), 54 min in all.
# Usage: training/shapes_mmdit/recipe.sh [OUT]
set -euo pipefail
OUT=${1:-.train/shapes_mmdit}
COMMON=(--out "$OUT" --layers 4 --batch-size 16 --lr 5e-4 --warmup 200 --ground-weight 0.1 --high-t-frac 0.25
  --eval-prompts 8 --eval-guidance 1.5 --save-every 250 --threads 1)

# 1. steps 0-3500: SD3's logit-normal sigma (a quarter of each batch from sigma in [0.5, 1)); colours, placement
#    and word maps are right by step 1000, but the samples keep speckles and ragged edges
python -m training.shapes_mmdit.train "${COMMON[@]}" --steps 3500 --t-sampling logit-normal --eval-every 1000
# 2. steps 3500-5142: uniform sigma, so that the last, least noisy sampling steps (sigma < 0.05: 0.2 % of
#    logit-normal draws) are trained; lr decays linearly from 3500 towards lr/10 at 5500 (the run hit its
#    54-minute limit at step 5142)
python -m training.shapes_mmdit.train "${COMMON[@]}" --resume --steps 5500 --decay-from 3500 --stop-at 5142 \
  --t-sampling uniform --eval-every 500

# ship the EMA weights of the last step in float16, then measure them as shapes-t2i is measured
python -m training.shapes_mmdit.train --export-from "$OUT/last" --out models/embedded/shapes_mmdit
python -m training.shapes_t2i.evaluate --model shapes-mmdit --seeds 0 1 --sweep 1 2 3 \
  --out models/embedded/shapes_mmdit/EVAL.json
