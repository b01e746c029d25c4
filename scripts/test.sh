#!/usr/bin/env bash
# Command 2: set up and run every test (pytest; dbt's data and unit tests run inside).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The browser tests (tests/e2e) drive Debian's Chromium through Playwright (no browser
# download): install it once when it is missing.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium; } >/dev/null 2>&1 \
        || echo "scripts/test.sh: could not install chromium" >&2
fi
if [ ! -x /usr/bin/chromium ] && [ "${CI:-}" = "true" ]; then
    echo "scripts/test.sh: CI needs /usr/bin/chromium for the browser tests" >&2
    exit 1
fi
# The R reference tests (tests/analytics/test_endpoints_match_r.py) run R's survival package with
# Debian's Rscript: install it once when it (or the package) is missing. In CI a missing R fails.
r_ready() { command -v Rscript >/dev/null 2>&1 && Rscript -e 'library(survival)' >/dev/null 2>&1; }
if ! r_ready && command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        r-base-core r-cran-survival; } >/dev/null 2>&1 \
        || echo "scripts/test.sh: could not install R (r-base-core r-cran-survival)" >&2
fi
if ! r_ready && [ "${CI:-}" = "true" ]; then
    echo "scripts/test.sh: CI needs Rscript with the survival package (r-base-core r-cran-survival) for the R reference tests" >&2
    exit 1
fi
exec .venv/bin/pytest "$@"
