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
import numpy as np
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
        return _share_repeated_strings(con.execute(sql, list(params)).df())


def _share_repeated_strings(frame: pd.DataFrame, min_rows: int = 1_000) -> pd.DataFrame:
    """The frame with each text column's equal values as one Python object (same values, same dtypes).

    ``st.cache_data`` pickles what it stores and unpickles a copy on every hit. DuckDB returns a
    new string object per row, so 100,000 patients' 'F'/'M' are pickled 100,000 times; shared
    objects are pickled once and then referenced (dim_patient: 0.2 s -> 0.03 s to pickle, 0.1 s ->
    0.02 s to unpickle). Columns of mostly distinct values (keys) are left as they are.
    """
    if len(frame) < min_rows:
        return frame
    for column in frame.columns[frame.dtypes == object]:
        values = frame[column].to_numpy()
        if pd.api.types.infer_dtype(values, skipna=True) != "string":  # lists, structs, all missing
            continue
        head = values[:min_rows]
        if 2 * len(pd.unique(head)) > len(head):
            continue
        codes, uniques = pd.factorize(values)  # missing values (None/NaN): code -1, kept as they were
        if 2 * len(uniques) > len(values):
            continue
        shared = np.asarray(uniques, dtype=object).take(codes)
        missing = codes < 0
        shared[missing] = values[missing]
        frame[column] = shared
    return frame


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


# --- SQL console -----------------------------------------------------------------------


def console_columns() -> pd.DataFrame:
    """Tables and columns the SQL console exposes: names and types of its schemas, no rows."""
    from prrt.sql_console import ALLOWED_SCHEMAS

    return query(
        "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns()"
        " WHERE database_name = current_database() AND list_contains(?, schema_name)"
        " ORDER BY schema_name, table_name, column_index",
        (list(ALLOWED_SCHEMAS),),
    )


# --- outcome pages (cohort, response, toxicity, survival, performance status) ----------
# Narrow, unordered or aggregated reads: at 100,000 patients, sorting or converting
# millions of patient_key strings is what costs, not DuckDB's scan.


def _patients_where(cohort) -> tuple[str, tuple]:
    """SQL condition on ``dim_patient p`` equivalent to ``filters.apply`` for a ``filters.Filters``
    (None: every patient). Empty selections do not restrict; the period is inclusive."""
    if cohort is None:
        return "TRUE", ()
    clauses, params = [], []
    for column in ("sex", "primary_site", "baseline_imaging"):
        chosen = tuple(getattr(cohort, column))
        if chosen:
            clauses.append(f"list_contains(?, p.{column})")
            params.append(list(chosen))
    if cohort.period:
        clauses.append("p.first_cycle_date BETWEEN ? AND ?")
        params.extend(cohort.period)
    return (" AND ".join(clauses) or "TRUE"), tuple(params)


def toxicity_events(min_grade: int = 1) -> pd.DataFrame:
    """``fct_toxicity`` rows with a post-baseline grade >= ``min_grade`` (one row per patient x
    CTCAE term): all that counts of patients by grade, or a grade threshold, need."""
    return query(
        "SELECT patient_key, ctcae_term, baseline_grade, worst_grade FROM marts.fct_toxicity WHERE worst_grade >= ?",
        (min_grade,),
    )


def toxicity_assessed(cohort=None) -> pd.DataFrame:
    """Per CTCAE term, the cohort's patients with a gradable post-baseline value (non-null worst grade)."""
    where, params = _of_patients(cohort)
    return query(
        "SELECT ctcae_term, count(worst_grade) AS n_assessed FROM marts.fct_toxicity"
        f" WHERE {where} GROUP BY ctcae_term ORDER BY ctcae_term",
        params,
    )


def toxicity_grade_counts(cohort=None) -> pd.DataFrame:
    """Patients by CTCAE term, baseline grade and worst post-baseline grade >= 1, counted over the
    cohort's treated patients (``n_cycles > 0``): ctcae_term, baseline_grade, worst_grade, n.
    ``fct_toxicity`` has one row per patient x term, so each count is of patients; the
    baseline grade is kept for the treatment-emergent rule (``analytics.worst_grade_counts``)."""
    where, params = _of_patients(cohort, treated=True)
    return query(
        "SELECT ctcae_term, baseline_grade, worst_grade, count(*) AS n FROM marts.fct_toxicity"
        f" WHERE worst_grade >= 1 AND {where} GROUP BY ALL ORDER BY ALL",
        params,
    )


def toxicity_for_patients(patient_keys: tuple[str, ...]) -> pd.DataFrame:
    """Every ``fct_toxicity`` row (graded 0 or not graded too) of a few patients."""
    return query(
        "SELECT * FROM marts.fct_toxicity WHERE list_contains(?, patient_key) ORDER BY patient_key, ctcae_term",
        (list(patient_keys),),
    )


def best_tumour_change() -> pd.DataFrame:
    """Per patient, the best (lowest) post-baseline % change from baseline in the sum of diameters."""
    return query(
        "SELECT patient_key, min(pct_change_from_baseline_sum) AS best_pct_change, count(*) AS n_assessments"
        " FROM marts.fct_tumour_assessment"
        " WHERE is_post_baseline AND pct_change_from_baseline_sum IS NOT NULL GROUP BY patient_key"
    )


def tumour_assessments_for_patients(patient_keys: tuple[str, ...]) -> pd.DataFrame:
    return query(
        "SELECT * FROM marts.fct_tumour_assessment WHERE list_contains(?, patient_key)"
        " ORDER BY patient_key, assessment_date",
        (list(patient_keys),),
    )


def treatment_cycles_for_patients(patient_keys: tuple[str, ...]) -> pd.DataFrame:
    return query(
        "SELECT * FROM marts.fct_treatment_cycle WHERE list_contains(?, patient_key)"
        " ORDER BY patient_key, administration_date",
        (list(patient_keys),),
    )


def survival_for_patients(patient_keys: tuple[str, ...]) -> pd.DataFrame:
    return query(
        "SELECT * FROM marts.fct_survival WHERE list_contains(?, patient_key) ORDER BY patient_key",
        (list(patient_keys),),
    )


def _of_patients(cohort, *, treated: bool = False) -> tuple[str, tuple]:
    """``patient_key`` condition selecting the cohort's patients (no join when nothing is filtered);
    ``treated``: only those with at least one cycle (``n_cycles > 0``, as the toxicity page's N)."""
    where, params = _patients_where(cohort)
    if treated:
        where = "p.n_cycles > 0" if where == "TRUE" else f"{where} AND p.n_cycles > 0"
    if where == "TRUE":
        return "TRUE", ()
    return f"patient_key IN (SELECT patient_key FROM marts.dim_patient p WHERE {where})", params


def median_cycle_days(cohort=None) -> pd.DataFrame:
    """Per cycle number, the median day (from the first cycle) it was given, over the cohort's patients."""
    where, params = _of_patients(cohort)
    return query(
        "SELECT cycle_number, median(days_from_first_cycle) AS median_day, count(*) AS patients"
        f" FROM marts.fct_treatment_cycle WHERE {where} GROUP BY cycle_number ORDER BY cycle_number",
        params,
    )


def lab_analytes() -> pd.DataFrame:
    """Analytes with results: analyte, unit (canonical). Nothing more: each further aggregate is
    another pass over every lab result (10.7 M at 100,000 patients)."""
    return query("SELECT analyte, any_value(unit) AS unit FROM marts.fct_lab_result GROUP BY analyte ORDER BY analyte")


def lab_results_for_patients(analyte: str, patient_keys: tuple[str, ...]) -> pd.DataFrame:
    """One analyte's results for a few patients."""
    return query(
        "SELECT patient_key, sample_date, days_from_first_cycle, value, unit, lln, uln, baseline_value, ctcae_grade"
        " FROM marts.fct_lab_result WHERE analyte = ? AND list_contains(?, patient_key)"
        " ORDER BY patient_key, sample_date",
        (analyte, list(patient_keys)),
    )


def lab_monthly_summary(analyte: str, cohort=None) -> pd.DataFrame:
    """One analyte over the cohort by month since the first cycle (days / 30.4375, rounded):
    month, q1, median, q3 (linear interpolation, as pandas), n samples; months with >= 3 samples."""
    where, params = _of_patients(cohort)
    # the three quantiles as one list aggregate: one sort of each month's values, not three
    return query(
        "SELECT month, q[1] AS q1, q[2] AS median, q[3] AS q3, n FROM ("
        " SELECT round(days_from_first_cycle / 30.4375) AS month, quantile_cont(value, [0.25, 0.5, 0.75]) AS q,"
        " count(*) AS n FROM marts.fct_lab_result"
        f" WHERE analyte = ? AND value IS NOT NULL AND days_from_first_cycle IS NOT NULL AND {where}"
        " GROUP BY ALL HAVING count(*) >= 3) ORDER BY month",
        (analyte, *params),
    )


def lab_limits(analyte: str, cohort=None) -> pd.DataFrame:
    """One analyte over the cohort: n samples, the median of their own LLN/ULN, and the 1st/99th
    percentiles of the values (p01, p99)."""
    where, params = _of_patients(cohort)
    return query(
        "SELECT n, lln, uln, p[1] AS p01, p[2] AS p99 FROM ("
        " SELECT count(*) AS n, median(lln) AS lln, median(uln) AS uln, quantile_cont(value, [0.01, 0.99]) AS p"
        f" FROM marts.fct_lab_result WHERE analyte = ? AND value IS NOT NULL AND {where})",
        (analyte, *params),
    )


def lab_results_for_patient(patient_key: str) -> pd.DataFrame:
    """All lab results of one patient."""
    return query(
        "SELECT * FROM marts.fct_lab_result WHERE patient_key = ? ORDER BY analyte, sample_date", (patient_key,)
    )


def treatment_cycles_for_patient(patient_key: str) -> pd.DataFrame:
    return query(
        "SELECT * FROM marts.fct_treatment_cycle WHERE patient_key = ? ORDER BY administration_date", (patient_key,)
    )


def lab_reference_ranges() -> pd.DataFrame:
    """Default adult reference ranges (applied where an export gives no lln/uln), by analyte and sex."""
    return query("SELECT * FROM reference.lab_reference_ranges ORDER BY analyte, sex NULLS FIRST")
