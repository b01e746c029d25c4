"""AppTest fixtures for the outcome pages: the demo warehouse (the paper's 16 patients)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.util import patch_config_options

from tests.conftest import REPO

APP = REPO / "streamlit_app" / "app.py"
OUTCOME_PAGES = ("cohort", "response", "toxicity", "survival", "performance_status")
TIMEOUT = 120  # first runs import lifelines/altair and fit models


@pytest.fixture(autouse=True)
def local_mode():
    """The app as scripts/demo.sh serves it: on 127.0.0.1 with no sign-in configured, i.e. local
    mode (streamlit_app/access.py), where the one user is a data manager and sees every page.
    Streamlit's own test helper sets the option the app reads; tests/app/test_signin.py sets others."""
    with patch_config_options({"server.address": "127.0.0.1"}):
        yield


@pytest.fixture
def warehouse(app_warehouse):
    """PRRT_WAREHOUSE -> the session's demo warehouse (tests/conftest.py: app_warehouse)."""
    return app_warehouse


def open_page(page: str, state: Mapping[str, object] | None = None) -> AppTest:
    """The app run from its entry point (navigation included), switched to ``views/<page>.py``.

    ``state``: session-state entries set before the first run (e.g. stored filters).
    """
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if page != "cohort":  # the default page
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def sidebar_count(at: AppTest) -> str:
    """The sidebar's 'n of N patients' line."""
    lines = [m.value for m in at.sidebar.markdown if "patients" in m.value]
    assert len(lines) == 1, lines
    return lines[0].strip("*")


def dataframe_with(at: AppTest, column: str):
    """The first dataframe on the page that has ``column``."""
    for frame in at.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no dataframe with a {column!r} column: {[list(f.value.columns) for f in at.dataframe]}")


@pytest.fixture(scope="session")
def synthetic_warehouse(tmp_path_factory):
    """400 synthetic patients (prrt.synth), refreshed once: enough to take the pages' large-cohort
    paths (monthly lab quartiles, grade-count heatmap, lane slider, aggregated slope chart)."""
    from prrt.synth import generate_export
    from tests.conftest import run_refresh

    root = tmp_path_factory.mktemp("synthetic")
    generate_export(400, root / "raw", seed=7)
    warehouse = root / "warehouse.duckdb"
    result = run_refresh(root / "raw", warehouse)
    assert result.returncode == 0, result.stdout + result.stderr
    return warehouse
