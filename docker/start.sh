#!/usr/bin/env bash
# Start the app as the Hugging Face Space runs it: every interface, port 8501 (README front matter
# app_port), headless. XSRF protection is off because a Space shows the app in an iframe on another
# site, where browsers drop the XSRF cookie and every upload fails with 403; the app has no accounts
# and no state-changing endpoint besides uploads, which are size-capped and validated.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m streamlit run app.py \
  --server.port "${PORT:-8501}" \
  --server.address 0.0.0.0 \
  --server.headless true \
  --server.enableXsrfProtection false \
  --browser.gatherUsageStats false \
  "$@"
