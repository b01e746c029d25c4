#!/usr/bin/env bash
# Command 2: set up and run every test (pytest; dbt's data and unit tests run inside).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/pytest "$@"
