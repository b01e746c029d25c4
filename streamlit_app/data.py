"""The app's only door to the warehouse: read-only, cached by the published file's identity.

A nightly refresh replaces the file by rename, which changes its inode and mtime, so
cached results are keyed on (path, inode, mtime) and a new warehouse shows up without
restarting the app. Each query opens its own short read-only connection, so the app
never holds a lock a refresh could wait on.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st

from prrt import config

Version = tuple[str, int, int]


def warehouse_file() -> Path:
    return config.warehouse_path()


def version() -> Version | None:
    path = warehouse_file()
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (str(path), stat.st_ino, stat.st_mtime_ns)


@st.cache_data(show_spinner=False, max_entries=64)
def _query(sql: str, version: Version) -> pd.DataFrame:
    with duckdb.connect(version[0], read_only=True) as con:
        return con.execute(sql).df()


def query(sql: str) -> pd.DataFrame:
    current = version()
    if current is None:
        raise FileNotFoundError(f"No warehouse at {warehouse_file()}: run `prrt refresh` first")
    return _query(sql, current)


# --- named reads used by the pages --------------------------------------------------


def dim_patient() -> pd.DataFrame:
    return query("SELECT * FROM marts.dim_patient ORDER BY first_cycle_date NULLS LAST, patient_key")


def km_median() -> pd.DataFrame:
    return query("SELECT * FROM analytics.km_median")


def last_refresh() -> pd.DataFrame:
    return query("SELECT * FROM audit.refresh_history ORDER BY published_at DESC LIMIT 1")
