#!/usr/bin/env bash
# Install the locked environment into .venv and prepare the dbt manifest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
python3 -m uv sync --frozen --extra dev --quiet
.venv/bin/prrt prepare
