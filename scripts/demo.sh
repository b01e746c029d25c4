#!/usr/bin/env bash
# Command 1: set up, build the warehouse from the bundled demo export, start the app.
# Local mode: no sign-in, so it listens on 127.0.0.1 only (streamlit_app/serve.py refuses
# any other address unless sign-in is configured: README, "Sign-in").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/prrt refresh
exec .venv/bin/python -m streamlit_app.serve --server.address 127.0.0.1 --server.port "${PORT:-8501}"
