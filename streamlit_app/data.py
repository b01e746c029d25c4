"""The app's only door to the warehouse: read-only, cached by the published file's identity.

A nightly refresh replaces the file by rename, which changes its inode and mtime, so
cached results are keyed on (path, inode, mtime) and a new warehouse shows up without
restarting the app. Queries share one read-only connection per warehouse version (opening
the file costs more than most of the pages' queries); a refresh never writes the published
file, it renames a new one over it, so that connection holds nothing a refresh waits on,
and it is let go as soon as a newer version is queried. Pages call the named reads below;
no SQL lives in the pages.
"""

from __future__ import annotations

import os
import threading
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


_lock = threading.Lock()
_open: dict[Version, duckdb.DuckDBPyConnection] = {}  # at most one: the latest version queried


def _cursor(version: Version) -> duckdb.DuckDBPyConnection:
    """A cursor (its own connection to the shared database, safe in this thread) of the version's file."""
    with _lock:
        con = _open.get(version)
        if con is None:
            _open.clear()  # an older version's connection closes once its last cursor is done
            # ATTACH, not duckdb.connect(path): connect() hands back a database still open in this
            # process under the same path, which after a refresh is the replaced file
            con = duckdb.connect(":memory:")
            con.execute("ATTACH ? AS warehouse (READ_ONLY)", [version[0]])
            _open[version] = con
        cursor = con.cursor()
    cursor.execute("USE warehouse")  # per cursor: each is its own connection
    return cursor


@st.cache_data(show_spinner=False, max_entries=256)
def _query(sql: str, params: tuple, version: Version) -> pd.DataFrame:
    with _cursor(version) as con:
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


def ctcae_thresholds(analyte: str, lln: float | None, uln: float | None,
                     baseline: float | None = None) -> pd.DataFrame:
    """Where each CTCAE v4.03 grade of ``analyte`` starts for these limits: grade, direction,
    threshold. From the warehouse's table macro ``reference.ctcae_thresholds``, which dbt builds
    from the expression that grades the lab results (dbt/macros/ctcae_thresholds.sql), so the bands
    drawn are the grades given. A limit that is missing (None or NaN) leaves out its criteria."""
    def known(v: float | None) -> float | None:
        return None if v is None or pd.isna(v) else float(v)

    return query("SELECT grade, direction, threshold FROM reference.ctcae_thresholds(?, ?, ?, ?)",
                 (analyte, known(lln), known(uln), known(baseline)))


# --- analytics -------------------------------------------------------------------------


def km_median(endpoint: str = "OS") -> pd.DataFrame:
    """analytics.km_median of one endpoint (OS: what the Survival page shows)."""
    return query("SELECT * FROM analytics.km_median WHERE endpoint = ?", (endpoint,))


# --- audit -----------------------------------------------------------------------------


def refresh_history() -> pd.DataFrame:
    return query("SELECT * FROM audit.refresh_history ORDER BY published_at DESC")


def last_refresh() -> pd.DataFrame:
    return query("SELECT * FROM audit.refresh_history ORDER BY published_at DESC LIMIT 1")


def development_key_in_use() -> bool:
    """Whether the published warehouse's patient_key was made with the public development key
    (the demo export, or test data refreshed with --allow-development-key): the app says so."""
    if version() is None:
        return False
    last = last_refresh()
    if last.empty or "development_key" not in last.columns:  # older warehouses did not record it
        return False
    flag = last["development_key"].iloc[0]
    return bool(pd.notna(flag) and flag)


def load_summary() -> pd.DataFrame:
    return query("SELECT * FROM audit.load_summary ORDER BY source_file")


def rejected_rows() -> pd.DataFrame:
    return query("SELECT * FROM audit.rejected_rows ORDER BY source_file, source_row")


def similar_patient_ids() -> pd.DataFrame:
    """Record numbers that differ only in case or leading zeros (identifying: data managers)."""
    if query("SELECT count(*) AS n FROM duckdb_tables() WHERE database_name = current_database()"
             " AND schema_name = 'audit' AND table_name = 'similar_patient_ids'")["n"].iloc[0] == 0:
        return pd.DataFrame(columns=["similar_form", "patient_id", "in_patients_csv", "rows_rejected_as_unknown"])
    return query("SELECT * FROM audit.similar_patient_ids ORDER BY similar_form, patient_id")


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


def _patients_where(cohort, *, treated: bool = False) -> tuple[str, tuple]:
    """SQL condition on ``dim_patient p`` selecting a ``filters.Filters`` cohort (None: every
    patient): the one definition of the sidebar filters. Empty selections do not restrict; the
    period (of the first cycle) is inclusive, so a never-treated patient is outside any period.
    ``treated``: only treated patients (dim_patient's ``is_treated``, dbt's one definition: at least one
    administration; the toxicity page's N)."""
    clauses, params = [], []
    if cohort is not None:
        for column in ("sex", "primary_site", "baseline_imaging"):
            chosen = tuple(getattr(cohort, column))
            if chosen:
                clauses.append(f"list_contains(?, p.{column})")
                params.append(list(chosen))
        if cohort.period:
            clauses.append("p.first_cycle_date BETWEEN ? AND ?")
            params.extend(cohort.period)
    if treated:
        clauses.append("p.is_treated")
    return (" AND ".join(clauses) or "TRUE"), tuple(params)


def _column(name: str) -> str:
    """A quoted dim_patient column name (names come from the pages' constants, never from users)."""
    return "p." + '"' + name.replace('"', '""') + '"'


PATIENT_ORDER = "p.first_cycle_date NULLS LAST, p.patient_key"  # dim_patient()'s row order


def patient_filter_options() -> pd.DataFrame:
    """One row: n_patients, the first and last first-cycle dates, and the distinct non-missing values
    of each filter column (lists): what the sidebar offers, without a row per patient."""
    return query(
        "SELECT count(*) AS n_patients, min(first_cycle_date) AS first_cycle, max(first_cycle_date) AS last_cycle,"
        " list(DISTINCT sex) AS sex, list(DISTINCT primary_site) AS primary_site,"
        " list(DISTINCT baseline_imaging) AS baseline_imaging FROM marts.dim_patient"
    )


def patient_count(cohort=None, *, treated: bool = False) -> int:
    where, params = _patients_where(cohort, treated=treated)
    return int(query(f"SELECT count(*) AS n FROM marts.dim_patient p WHERE {where}", params)["n"].iloc[0])


def patients(cohort=None, columns: tuple[str, ...] | None = None, *, treated: bool = False,
             limit: int | None = None) -> pd.DataFrame:
    """The cohort's dim_patient rows, in dim_patient()'s order: only ``columns`` (default all), at
    most ``limit`` rows. For listings and small cohorts; large cohorts are read as counts."""
    where, params = _patients_where(cohort, treated=treated)
    selected = ", ".join(_column(c) for c in columns) if columns else "p.*"
    return query(
        f"SELECT {selected} FROM marts.dim_patient p WHERE {where} ORDER BY {PATIENT_ORDER}"
        + (" LIMIT ?" if limit is not None else ""),
        (*params, limit) if limit is not None else params,
    )


def patient_counts(columns: tuple[str, ...], cohort=None, *, treated: bool = False) -> pd.DataFrame:
    """The cohort's patients by the distinct values of ``columns`` (missing: a value of its own):
    columns..., n. One row per combination instead of one per patient."""
    where, params = _patients_where(cohort, treated=treated)
    selected = ", ".join(_column(c) for c in columns)
    return query(
        f"SELECT {selected}, count(*) AS n FROM marts.dim_patient p WHERE {where}"
        f" GROUP BY ALL ORDER BY ALL NULLS LAST",
        params,
    )


def value_counts(column: str, cohort=None, *, treated: bool = False) -> pd.Series:
    """The cohort's patients by value of one column (value -> n, missing values as a NaN/None
    entry), ordered by value: what medians, ranges and frequency tables need."""
    counts = patient_counts((column,), cohort, treated=treated)
    return pd.Series(counts["n"].to_numpy(), index=pd.Index(counts[column], name=column), name="n")


def survival_counts(cohort=None, by: str | None = None, *, endpoint: str = "OS") -> pd.DataFrame:
    """The cohort's patients by one endpoint's time and status (marts.fct_time_to_event's months and
    event) and stratum: [by,] months, event, n (missing strata included; patients without the
    endpoint, e.g. non-responders for DOR, are not in it). Kaplan-Meier and the log-rank test need
    no more. ``by``: a dim_patient column."""
    where, params = _patients_where(cohort)
    stratum = f"{_column(by)}, " if by is not None else ""
    return query(
        f"SELECT {stratum}t.months, t.event, count(*) AS n FROM marts.dim_patient p"
        " JOIN marts.fct_time_to_event t ON t.patient_key = p.patient_key AND t.endpoint = ?"
        f" WHERE {where} GROUP BY ALL ORDER BY ALL NULLS LAST",
        (endpoint, *params),
    )


def time_to_event_patients(cohort, endpoint: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """The cohort's patients with ``endpoint`` (marts.fct_time_to_event): ``columns`` of dim_patient,
    months and event. What the Cox models of the Survival page read."""
    where, params = _patients_where(cohort)
    selected = ", ".join(_column(c) for c in columns)
    return query(
        f"SELECT {selected}, t.months, t.event FROM marts.dim_patient p"
        " JOIN marts.fct_time_to_event t ON t.patient_key = p.patient_key AND t.endpoint = ?"
        f" WHERE {where}",
        (endpoint, *params),
    )


def time_to_event_counts(endpoint: str, cohort=None) -> pd.DataFrame:
    """The cohort's patients by time and event of one ``marts.fct_time_to_event`` endpoint ('OS',
    'PFS', 'TTP', 'DOR', 'TTR'; DOR and TTR have rows for responders only), rows with both only:
    months, event, n. Kaplan-Meier (and TTR's median and range) need no more."""
    return survival_counts(cohort, endpoint=endpoint).dropna(subset=["months", "event"]).reset_index(drop=True)


def waterfall(cohort=None, max_bars: int | None = None) -> pd.DataFrame:
    """Per patient of the cohort with one, the best (lowest) post-baseline % change from baseline
    in the sum of diameters and the best overall response ('missing' if none), sorted as the
    waterfall draws them (largest change first, then patient_key): patient_key, best_pct_change,
    best_overall_response, n_patients (how many have one: the rows before thinning).

    ``max_bars``: above this many patients, only the rows ``charts.thin_sorted`` keeps: positions
    round_half_even(k (n - 1) / (max_bars - 1)) for k < max_bars, as numpy's linspace and round
    compute them. Each patient's best change is dim_patient.best_pct_change_from_baseline_sum."""
    where, params = _patients_where(cohort)
    # materialized: the ranks of all, the rows of the kept positions only
    return query(
        "WITH best AS MATERIALIZED (SELECT p.patient_key, p.best_pct_change_from_baseline_sum AS best_pct_change,"
        " coalesce(p.best_overall_response, 'missing') AS best_overall_response FROM marts.dim_patient p"
        f" WHERE p.best_pct_change_from_baseline_sum IS NOT NULL AND {where}),"
        " counted AS (SELECT count(*) AS n_patients FROM best),"
        " kept AS (SELECT DISTINCT CAST(round_even(k * ((n_patients - 1) / (? - 1)), 0) AS BIGINT) AS position"
        "  FROM counted, range(?) r(k)),"
        " selected AS (SELECT * FROM (SELECT *, row_number() OVER"
        "  (ORDER BY best_pct_change DESC, patient_key) - 1 AS position FROM best) r"
        "  WHERE (SELECT n_patients FROM counted) <= ? OR r.position IN (SELECT position FROM kept))"
        " SELECT patient_key, best_pct_change, best_overall_response, (SELECT n_patients FROM counted) AS n_patients"
        " FROM selected ORDER BY position",
        (*params, *((max_bars, max_bars, max_bars) if max_bars else (2, 0, 2**62))),
    )


def longest_followup(cohort=None, lanes: int = 50) -> tuple[str, ...]:
    """patient_keys of the cohort's ``lanes`` longest overall survival times (ties: dim_patient order)."""
    where, params = _patients_where(cohort)
    keys = query(
        f"SELECT p.patient_key FROM marts.dim_patient p WHERE p.os_months IS NOT NULL AND {where}"
        f" ORDER BY p.os_months DESC, {PATIENT_ORDER} LIMIT ?",
        (*params, lanes),
    )
    return tuple(keys["patient_key"])


def treated_patient_starting(prefix: str, cohort=None) -> str | None:
    """The first (in dim_patient order) treated patient of the cohort whose key starts with ``prefix``."""
    where, params = _patients_where(cohort, treated=True)
    keys = query(
        f"SELECT p.patient_key FROM marts.dim_patient p WHERE starts_with(p.patient_key, ?) AND {where}"
        f" ORDER BY {PATIENT_ORDER} LIMIT 1",
        (prefix, *params),
    )
    return keys["patient_key"].iloc[0] if len(keys) else None


def toxicity_assessed(cohort=None) -> pd.DataFrame:
    """Per CTCAE term, the cohort's patients with a gradable post-baseline value (non-null worst grade)."""
    where, params = _of_patients(cohort)
    return query(
        "SELECT ctcae_term, count(worst_grade) AS n_assessed FROM marts.fct_toxicity"
        f" WHERE {where} GROUP BY ctcae_term ORDER BY ctcae_term",
        params,
    )


def toxicity_grade_counts(cohort=None) -> pd.DataFrame:
    """Patients by CTCAE term, worst post-baseline grade >= 1 and treatment-emergent grade,
    counted over the cohort's treated patients (``dim_patient.is_treated``): ctcae_term, worst_grade,
    treatment_emergent_grade, n. ``fct_toxicity`` has one row per patient x term, so each count
    is of patients (``analytics.worst_grade_counts`` picks either grade).

    An untreated patient has no worst grade (it is over the samples after the first cycle), so
    the cohort's rows are its treated patients' rows: no semi-join of ~10 M rows on is_treated."""
    where, params = _of_patients(cohort)
    return query(
        "SELECT ctcae_term, worst_grade, treatment_emergent_grade, count(*) AS n FROM marts.fct_toxicity"
        f" WHERE worst_grade >= 1 AND {where} GROUP BY ALL ORDER BY ALL",
        params,
    )


def toxicity_for_patients(patient_keys: tuple[str, ...]) -> pd.DataFrame:
    """Every ``fct_toxicity`` row (graded 0 or not graded too) of a few patients."""
    return query(
        "SELECT * FROM marts.fct_toxicity WHERE patient_key IN (SELECT unnest(?)) ORDER BY patient_key, ctcae_term",
        (list(patient_keys),),
    )


def tumour_assessments_for_patients(patient_keys: tuple[str, ...]) -> pd.DataFrame:
    return query(
        "SELECT * FROM marts.fct_tumour_assessment WHERE patient_key IN (SELECT unnest(?))"
        " ORDER BY patient_key, assessment_date",
        (list(patient_keys),),
    )


def treatment_cycles_for_patients(patient_keys: tuple[str, ...]) -> pd.DataFrame:
    return query(
        "SELECT * FROM marts.fct_treatment_cycle WHERE patient_key IN (SELECT unnest(?))"
        " ORDER BY patient_key, administration_date",
        (list(patient_keys),),
    )


def survival_for_patients(patient_keys: tuple[str, ...]) -> pd.DataFrame:
    return query(
        "SELECT * FROM marts.fct_survival WHERE patient_key IN (SELECT unnest(?)) ORDER BY patient_key",
        (list(patient_keys),),
    )


def _of_patients(cohort) -> tuple[str, tuple]:
    """``patient_key`` condition selecting the cohort's patients (no join when nothing is filtered)."""
    where, params = _patients_where(cohort)
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
    """Analytes with results: analyte, unit (canonical). Ingestion admits only the analytes of
    ``reference.lab_analytes``, so each of those is looked up with a LIMIT 1 that stops at its first
    result, instead of a pass over every lab result (107 M at 1,000,000 patients)."""
    known = query("SELECT DISTINCT analyte FROM reference.lab_analytes ORDER BY analyte")["analyte"].tolist()
    if not known:
        return pd.DataFrame({"analyte": pd.Series(dtype=object), "unit": pd.Series(dtype=object)})
    first = " UNION ALL ".join(["(SELECT analyte, unit FROM marts.fct_lab_result WHERE analyte = ? LIMIT 1)"] * len(known))
    return query(f"SELECT analyte, unit FROM ({first}) ORDER BY analyte", tuple(known))


def lab_results_for_patients(analyte: str, patient_keys: tuple[str, ...]) -> pd.DataFrame:
    """One analyte's results for a few patients."""
    return query(
        "SELECT patient_key, sample_date, days_from_first_cycle, value, unit, lln, uln, baseline_value, ctcae_grade"
        " FROM marts.fct_lab_result WHERE analyte = ? AND patient_key IN (SELECT unnest(?))"
        " ORDER BY patient_key, sample_date",
        (analyte, list(patient_keys)),
    )


def lab_value_counts(analyte: str, cohort=None) -> pd.DataFrame:
    """One analyte's results over the cohort, counted by month since the first cycle (days /
    dbt var days_per_month, rounded; missing without a day), value, lln and uln: month, value, lln, uln, n
    (results with a value). Values have a fixed precision, so this is a few thousand rows where
    the results are millions; the monthly quartiles and limits come from it (analytics.labs)."""
    where, params = _of_patients(cohort)
    return query(
        f"SELECT round(days_from_first_cycle / {float(config.dbt_var('days_per_month'))!r}) AS month, value, lln, uln,"
        " count(*) AS n"
        f" FROM marts.fct_lab_result WHERE analyte = ? AND value IS NOT NULL AND {where} GROUP BY ALL",
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
