#!/usr/bin/env bash
# Install the locked environment into .venv and prepare the dbt manifest.
set -euo pipefail
cd "$(dirname "$0")/.."
# uv: the system's, or one bootstrapped into a private venv (.build-tools/): never pip into the
# system Python, which PEP 668 systems (Debian, Ubuntu) refuse.
if python3 -m uv --version >/dev/null 2>&1; then
    uv=(python3 -m uv)
else
    if [ ! -x .build-tools/bin/uv ]; then
        python3 -m venv .build-tools
        .build-tools/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.13,<1"
    fi
    uv=(.build-tools/bin/uv)
fi
"${uv[@]}" sync --frozen --extra dev --quiet
.venv/bin/prrt prepare
