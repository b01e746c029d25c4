"""What the analytics asset reads from the warehouse, and that reading only that gives the
tables the whole marts would: toxicity counts and the nadir summary by SQL, text columns as
categoricals."""

from __future__ import annotations

import re

import duckdb
import pandas as pd
import pytest

from dagster_project.assets.analytics import compute_analytics_tables, read_frame
from prrt.analytics import (
    ANALYTICS_QUERIES,
    MARTS_READ,
    TABLES,
    add_derived_groups,
    build_analytics_tables,
    toxicity_table,
)
from prrt.analytics.catalog import ENDPOINT_COLUMNS, PATIENT_COLUMNS


@pytest.fixture
def warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    keys = [f"p{i}" for i in range(12)]
    con.execute(
        """CREATE TABLE marts.dim_patient AS SELECT * FROM (VALUES
        ('p0', 'F', 70, 'pancreas', 'ga68', 3, true, 1, 7.4, 2, 2, 60, 60, 'PD', 'PD', 3.0, 1, 2),
        ('p1', 'M', 65, 'small_intestine', 'ga68', 4, true, 2, 9.25, 2, 1, 70, 80, 'SD', 'SD', 6.0, 1, 1),
        ('p2', 'F', 60, 'pancreas', 'octreoscan', 3, true, 3, 11.1, 1, 1, 80, 80, 'PR', 'SD', 9.0, 0, NULL),
        ('p3', 'M', 55, 'lung', 'ga68', NULL, true, 4, 22.2, 1, 0, 80, 90, 'PR', 'PR', 12.0, 1, 3),
        ('p4', 'F', 50, 'pancreas', 'ga68', 4, true, 5, 27.75, 0, 0, 90, 90, 'CR', 'CR', 15.0, 0, 0),
        ('p5', 'M', 45, 'small_intestine', 'octreoscan', 3, true, 6, 37.0, 0, 0, 90, 100, 'PR', 'PR', 18.0, 0, 1),
        ('p6', 'F', 40, 'lung', 'ga68', 3, true, 7, 49.95, 1, 1, 80, 80, 'PR', 'NE', 21.0, 1, 2),
        ('p7', 'F', 35, 'pancreas', 'ga68', 4, true, 3, 18.5, 0, 0, 100, 100, NULL, NULL, 24.0, 0, NULL),
        ('p8', 'M', 62, 'unknown''s', 'ga68', 2, true, 4, 29.6, 1, NULL, 80, NULL, 'SD', 'SD', 4.5, 1, 1),
        ('p9', 'F', 58, 'pancreas', 'octreoscan', 3, true, 2, 14.8, 2, 1, 70, 80, 'PD', 'PD', 7.5, 1, 4),
        ('p10', 'M', 66, 'lung', 'ga68', 4, false, 0, NULL, 1, NULL, 80, NULL, NULL, NULL, NULL, NULL, NULL),
        ('p11', 'F', 47, 'pancreas', 'ga68', 3, true, 4, 29.6, 0, 0, 90, 90, 'CR', 'CR', 30.0, 0, 0)
        ) AS t(patient_key, sex, age_at_first_cycle, primary_site, baseline_imaging, krenning_score, is_treated,
               n_cycles, cumulative_activity_gbq, ecog_pre, ecog_post, kps_pre, kps_post, best_overall_response,
               confirmed_best_overall_response, os_months, os_event, worst_ctcae_grade)"""
    )
    # the groups dbt derives (dbt/macros/patient_groups.sql, seeds response_groups and ki67_groups), here
    # from the columns above; the landmark versions as if everything was known before the landmark
    con.execute(
        """CREATE OR REPLACE TABLE marts.dim_patient AS SELECT *,
            CAST(NULL AS VARCHAR) AS tumour_grade,
            CAST(NULL AS VARCHAR) AS ki67_group,
            CASE WHEN n_cycles >= 4 THEN '>= 4' WHEN n_cycles IS NOT NULL THEN '<= 3' END AS cycles_group,
            n_cycles AS n_cycles_at_landmark,
            cumulative_activity_gbq AS cumulative_activity_gbq_at_landmark,
            cycles_group AS cycles_group_at_landmark,
            CASE WHEN best_overall_response IN ('CR', 'PR') THEN 'CR/PR'
                 WHEN best_overall_response IN ('SD', 'PD') THEN 'SD/PD' END AS best_response_group,
            best_response_group AS best_response_group_at_landmark,
            CASE WHEN is_treated THEN CASE WHEN coalesce(worst_ctcae_grade, 0) >= 2 THEN '>= 2' ELSE '< 2' END END
                AS toxicity_grade_group,
            toxicity_grade_group AS toxicity_grade_group_at_landmark
        FROM marts.dim_patient"""
    )
    # fct_time_to_event: OS as dim_patient's (a dbt test holds the warehouse to it), PFS half as long with
    # an event for every other treated patient; untreated p10 has no rows
    con.execute(
        """CREATE TABLE marts.fct_time_to_event AS
        SELECT patient_key, 'OS' AS endpoint, os_months AS months, os_event AS event FROM marts.dim_patient
        WHERE is_treated
        UNION ALL
        SELECT patient_key, 'PFS', os_months / 2, CAST(n_cycles % 2 AS INTEGER) FROM marts.dim_patient WHERE is_treated"""
    )
    # fct_toxicity: one row per treated patient x term; the worst over terms is dim_patient's worst_ctcae_grade
    worst = dict(con.execute("SELECT patient_key, worst_ctcae_grade FROM marts.dim_patient WHERE is_treated").fetchall())
    rows = []
    for key, grade in worst.items():
        rows.append((key, "Anemia", 0, grade))
        rows.append((key, "Creatinine increased", 0, None if grade is None else min(grade, 1)))
        rows.append((key, "Hypoalbuminemia", None, None))
    con.execute("CREATE TABLE marts.fct_toxicity (patient_key VARCHAR, ctcae_term VARCHAR, baseline_grade INTEGER,"
                " worst_grade INTEGER)")
    con.executemany("INSERT INTO marts.fct_toxicity VALUES (?, ?, ?, ?)", rows)
    con.execute(
        """CREATE TABLE marts.fct_lab_nadir AS SELECT * FROM (VALUES
        ('p0', 'hemoglobin', 'g/dL', 'lowest', 12.0, 10.0, 60, -100 / 6, 4),
        ('p1', 'hemoglobin', 'g/dL', 'lowest', 14.0, 13.0, 20, -100 / 14, 2),
        ('p2', 'hemoglobin', 'g/dL', 'lowest', NULL, 12.5, 45, NULL, 1),
        ('p0', 'creatinine', 'umol/L', 'highest', 80.0, 100.0, 60, 25.0, 3)
        ) AS t(patient_key, analyte, unit, direction, baseline_value, nadir_value, days_to_nadir,
               pct_change_from_baseline, n_post_baseline_samples)"""
    )
    assert len(keys) == con.execute("SELECT count(*) FROM marts.dim_patient").fetchone()[0]
    yield con
    con.close()


def test_queries_read_only_the_marts_declared():
    read = {m for sql in ANALYTICS_QUERIES.values() for m in re.findall(r"\bmarts\.(\w+)", sql)}
    assert read == set(MARTS_READ)



def test_the_patient_read_holds_no_patient_key(warehouse):
    # patient_key joins dim_patient to fct_time_to_event inside DuckDB; a million keys never reach pandas
    read = [row[0] for row in warehouse.execute(f"DESCRIBE {ANALYTICS_QUERIES['dim_patient']}").fetchall()]
    assert read == [*PATIENT_COLUMNS, *ENDPOINT_COLUMNS]


def test_text_columns_are_read_as_categoricals(warehouse):
    patients = read_frame(warehouse, ANALYTICS_QUERIES["dim_patient"])
    assert list(patients.columns) == [*PATIENT_COLUMNS, *ENDPOINT_COLUMNS]
    plain = warehouse.execute(ANALYTICS_QUERIES["dim_patient"]).df()
    for column in ("sex", "primary_site", "baseline_imaging", "best_overall_response"):
        assert isinstance(patients[column].dtype, pd.CategoricalDtype), column
        assert not patients[column].cat.ordered
        assert patients[column].astype(object).where(patients[column].notna(), None).tolist() == (
            plain[column].where(plain[column].notna(), None).tolist()), column
    assert "unknown's" in set(patients["primary_site"])  # quotes survive the ENUM
    # numbers keep DuckDB's dtypes
    assert patients["os_months"].dtype == plain["os_months"].dtype
    assert patients["worst_ctcae_grade"].dtype == plain["worst_ctcae_grade"].dtype


def test_an_all_null_text_column_stays_as_it_is(warehouse):
    frame = read_frame(warehouse, "SELECT CAST(NULL AS VARCHAR) AS note, 1 AS n")
    assert frame["note"].isna().all() and frame["n"].tolist() == [1]
    assert read_frame(warehouse, "SELECT * FROM marts.fct_lab_nadir WHERE false").empty


def test_the_asset_reads_give_the_tables_of_the_whole_marts(warehouse):
    tables = compute_analytics_tables(warehouse)
    assert list(tables) == list(TABLES)

    whole_patients = warehouse.execute("SELECT * FROM marts.dim_patient").df()
    # each endpoint's months and event beside the patient, from fct_time_to_event's rows (pandas' pivot)
    times = warehouse.execute("SELECT * FROM marts.fct_time_to_event").df().pivot(
        index="patient_key", columns="endpoint", values=["months", "event"])
    times.columns = [f"{endpoint.lower()}_{measure}" for measure, endpoint in times.columns]
    whole_patients = whole_patients.drop(columns=["os_months", "os_event"]).merge(
        times.reset_index(), on="patient_key", how="left")
    whole_toxicity = warehouse.execute("SELECT * FROM marts.fct_toxicity").df()
    n_treated = int(whole_patients["is_treated"].sum())
    # Table 2 from the SQL counts equals Table 2 from fct_toxicity's rows
    pd.testing.assert_frame_equal(tables["toxicity_summary"], toxicity_table(whole_toxicity, n_treated, decimals=None))
    # the nadir summary: hemoglobin's days 60, 20, 45 -> median 45, IQR 32.5-52.5; creatinine one patient
    nadir = tables["lab_nadir"].set_index("analyte")
    assert nadir.loc["hemoglobin", ["n_patients", "days_to_nadir_median", "days_to_nadir_q1", "days_to_nadir_q3",
                                    "n_with_baseline", "baseline_value_median"]].tolist() == [3, 45.0, 32.5, 52.5,
                                                                                              2, 13.0]
    assert list(nadir.index) == ["hemoglobin", "creatinine"]
    # the rest equals the build on the whole marts (and the nadir summary) read as plain text
    plain_nadir = warehouse.execute(ANALYTICS_QUERIES["lab_nadir_summary"]).df()
    expected = build_analytics_tables({"dim_patient": whole_patients, "lab_nadir_summary": plain_nadir})
    for name, table in expected.items():
        pd.testing.assert_frame_equal(tables[name], table, obj=name)
