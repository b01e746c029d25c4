#!/usr/bin/env bash
# Command 1: set up, build the warehouse from the bundled demo export, start the app.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/prrt refresh
exec .venv/bin/streamlit run streamlit_app/app.py --server.port "${PORT:-8501}"
