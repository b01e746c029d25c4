"""PRRT outcomes warehouse: ingestion, pseudonymisation, analytics and the `prrt` command."""

import os
import warnings

# The tests set this for every process they start (refreshes, the app, the Dagster daemon), so
# a deprecated call in the project's own code fails the test instead of scrolling by; the
# module pattern leaves libraries' warnings about their own internals as warnings.
if os.environ.get("PRRT_DEPRECATIONS_AS_ERRORS") == "1":
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("error", category=category, module=r"(prrt|dagster_project|streamlit_app)(\.|$)")
