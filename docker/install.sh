#!/usr/bin/env bash
# Install Glimpse into the current Python environment, in two steps so the image caches the first:
#   docker/install.sh deps      the pinned requirements (requirements.txt)
#   docker/install.sh package   glimpse itself, editable (needs the sources)
#   docker/install.sh           both
# The Dockerfile (Hugging Face Space) runs these, and .ci/space-check runs them in a fresh virtual
# environment, so the image's install commands are tested without a Docker engine.
#   TORCH_INDEX_URL  where torch comes from (the image defaults to PyTorch's CPU wheels; a GPU Space sets
#                    a CUDA index such as https://download.pytorch.org/whl/cu128; empty: PyPI)
set -euo pipefail
cd "$(dirname "$0")/.."
step=${1:-all}
PIP=(python -m pip --disable-pip-version-check --no-cache-dir)
case $step in
  deps | all)
    if [[ -n "${TORCH_INDEX_URL:-}" ]]; then
      "${PIP[@]}" install --index-url "$TORCH_INDEX_URL" "$(grep -E '^torch==' requirements.txt)"
    fi
    "${PIP[@]}" install -r requirements.txt
    ;;&
  package | all)
    "${PIP[@]}" install --no-deps -e .
    ;;
  deps) ;;
  *)
    echo "usage: docker/install.sh [deps|package|all]" >&2
    exit 2
    ;;
esac
