"""The app's only door to the warehouse: read-only, cached by the published file's identity.

A nightly refresh replaces the file by rename, which changes its inode and mtime, so
cached results are keyed on (path, inode, mtime) and a new warehouse shows up without
restarting the app. Each query opens its own short read-only connection, so the app
never holds a lock a refresh could wait on. Pages call the named reads below; no SQL
lives in the pages.
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


@st.cache_data(show_spinner=False, max_entries=256)
def _query(sql: str, params: tuple, version: Version) -> pd.DataFrame:
    with duckdb.connect(version[0], read_only=True) as con:
        return con.execute(sql, list(params)).df()


def query(sql: str, params: tuple = ()) -> pd.DataFrame:
    current = version()
    if current is None:
        raise FileNotFoundError(f"No warehouse at {warehouse_file()}: run `prrt refresh` first")
    return _query(sql, params, current)


# --- marts ---------------------------------------------------------------------------


def dim_patient() -> pd.DataFrame:
    return query("SELECT * FROM marts.dim_patient ORDER BY first_cycle_date NULLS LAST, patient_key")


def fct_treatment_cycle() -> pd.DataFrame:
    return query("SELECT * FROM marts.fct_treatment_cycle ORDER BY patient_key, administration_date")


def fct_lab_result() -> pd.DataFrame:
    return query("SELECT * FROM marts.fct_lab_result ORDER BY patient_key, analyte, sample_date")


def fct_toxicity() -> pd.DataFrame:
    return query("SELECT * FROM marts.fct_toxicity ORDER BY patient_key, ctcae_term")


def fct_tumour_assessment() -> pd.DataFrame:
    return query("SELECT * FROM marts.fct_tumour_assessment ORDER BY patient_key, assessment_date")


def fct_survival() -> pd.DataFrame:
    return query("SELECT * FROM marts.fct_survival ORDER BY patient_key")


def ctcae_criteria() -> pd.DataFrame:
    return query("SELECT * FROM reference.ctcae_v4_03_lab_criteria ORDER BY ctcae_term, grade")


# --- analytics -------------------------------------------------------------------------


def km_median() -> pd.DataFrame:
    return query("SELECT * FROM analytics.km_median")


# --- audit -----------------------------------------------------------------------------


def refresh_history() -> pd.DataFrame:
    return query("SELECT * FROM audit.refresh_history ORDER BY published_at DESC")


def last_refresh() -> pd.DataFrame:
    return query("SELECT * FROM audit.refresh_history ORDER BY published_at DESC LIMIT 1")


def load_summary() -> pd.DataFrame:
    return query("SELECT * FROM audit.load_summary ORDER BY source_file")


def rejected_rows() -> pd.DataFrame:
    return query("SELECT * FROM audit.rejected_rows ORDER BY source_file, source_row")


def check_results() -> pd.DataFrame:
    return query("SELECT * FROM audit.check_results ORDER BY passed, asset, check_name")


def run_log() -> pd.DataFrame:
    return query("SELECT * FROM audit.run_log ORDER BY started_at")
