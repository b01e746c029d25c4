"""Shared fixtures: real refreshes (the `prrt` console script, real dbt, real Dagster)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

# Every process a test starts inherits this: deprecated calls in project code are errors there
# too (prrt/__init__.py), as pytest's filterwarnings makes them in the tests' own process.
os.environ["PRRT_DEPRECATIONS_AS_ERRORS"] = "1"

REPO = Path(__file__).resolve().parent.parent
DEMO_EXPORT = REPO / "raw" / "demo"
PRRT = str(Path(sys.executable).with_name("prrt"))


def run_refresh(raw: Path, warehouse: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """`prrt refresh` as a user runs it, in its own process, with the development key (the
    tests' exports are synthetic: outside the bundled demo export that needs the flag)."""
    env = dict(os.environ)
    env.pop("PRRT_PSEUDONYM_KEY", None)
    env.pop("PRRT_PSEUDONYM_KEY_FILE", None)
    allow = [] if Path(raw).resolve() == DEMO_EXPORT.resolve() else ["--allow-development-key"]
    return subprocess.run(
        [PRRT, "refresh", "--raw", str(raw), "--warehouse", str(warehouse), *allow, *args],
        capture_output=True, text=True, env=env, timeout=900, **kwargs,
    )


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory) -> Path:
    """The demo export refreshed once per test session."""
    warehouse = tmp_path_factory.mktemp("demo") / "warehouse.duckdb"
    result = run_refresh(DEMO_EXPORT, warehouse)
    assert result.returncode == 0, result.stdout + result.stderr
    return warehouse


@pytest.fixture(scope="session")
def synth_5000_warehouse(tmp_path_factory) -> Path:
    """A 5,000-patient synthetic export (`prrt synth`, seed 0) refreshed once per test session."""
    root = tmp_path_factory.mktemp("synth_5000")
    export = root / "raw"
    subprocess.run([PRRT, "synth", "--patients", "5000", "--out", str(export)], check=True, capture_output=True,
                   timeout=300)
    warehouse = root / "warehouse.duckdb"
    result = run_refresh(export, warehouse)
    assert result.returncode == 0, result.stdout + result.stderr
    return warehouse


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def published(demo_warehouse, tmp_path) -> Path:
    """A private copy of the demo warehouse, published at a path of its own."""
    target = tmp_path / "published" / "warehouse.duckdb"
    target.parent.mkdir()
    shutil.copy(demo_warehouse, target)
    return target


@pytest.fixture
def demo_db(demo_warehouse):
    con = duckdb.connect(str(demo_warehouse), read_only=True)
    yield con
    con.close()


@pytest.fixture
def app_warehouse(monkeypatch, demo_warehouse) -> Path:
    """The app pointed at the session's demo warehouse, with st.cache_data cleared around the test."""
    import streamlit as st

    monkeypatch.setenv("PRRT_WAREHOUSE", str(demo_warehouse))
    st.cache_data.clear()
    yield demo_warehouse
    st.cache_data.clear()
