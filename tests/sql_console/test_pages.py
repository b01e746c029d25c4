"""AppTest of the SQL and data quality pages against the demo warehouse."""

from __future__ import annotations

import shutil

import duckdb
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

PAGES = REPO / "streamlit_app" / "views"


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# --- SQL -------------------------------------------------------------------------------------


def test_sql_page_runs_the_first_example_and_a_query(app_warehouse):
    at = page("sql.py")
    assert at.text_area(key="sql").value.startswith("-- Table 2")
    at.button(key="run").click().run()
    assert not at.exception and not at.error
    table_2 = at.dataframe[0].value
    assert "Anemia" in set(table_2["ctcae_term"])

    at.text_area(key="sql").set_value("SELECT count(*) AS patients FROM marts.dim_patient")
    at.button(key="run").click().run()
    assert not at.exception and not at.error
    assert at.dataframe[0].value["patients"].tolist() == [16]
    assert any(b.label == "Download CSV" for b in at.get("download_button"))


def test_sql_page_example_selector_loads_the_query(app_warehouse):
    at = page("sql.py")
    at.selectbox(key="example").set_value("Kaplan-Meier median overall survival").run()
    assert "analytics.km_median" in at.text_area(key="sql").value
    at.button(key="run").click().run()
    assert at.dataframe[0].value["n"].tolist() == [16, 16, 16, 16]  # log-log, log, plain, spss


@pytest.mark.parametrize(
    "attack, message",
    [
        ("SELECT patient_id, birth_date FROM ingest.patients", "ingest is not available"),
        ("SELECT * FROM read_csv('/etc/passwd')", "cannot read or write files"),
        ("SET lock_configuration = false", "settings are fixed"),
        ("SELECT 1; DROP TABLE marts.dim_patient", "one statement at a time"),
    ],
)
def test_sql_page_shows_attacks_as_errors(app_warehouse, attack, message):
    at = page("sql.py")
    at.text_area(key="sql").set_value(attack)
    at.button(key="run").click().run()
    assert not at.exception
    assert len(at.error) == 1 and message in at.error[0].value
    # The page still works afterwards.
    at.text_area(key="sql").set_value("SELECT 42 AS answer")
    at.button(key="run").click().run()
    assert not at.error and at.dataframe[0].value["answer"].tolist() == [42]


def test_sql_page_row_cap_notice(app_warehouse):
    at = page("sql.py")
    at.text_area(key="sql").set_value("SELECT * FROM range(20000)")
    at.button(key="run").click().run()
    assert len(at.dataframe[0].value) == 10_000
    assert any("first 10,000 rows" in w.value for w in at.warning)


def test_sql_page_schema_browser(app_warehouse):
    at = page("sql.py")
    tables = at.selectbox(key="schema_table")
    names = set(tables.options)
    assert "marts.dim_patient" in names and not any(n.startswith(("ingest.", "staging.", "intermediate.")) for n in names)
    tables.set_value(("marts", "dim_patient")).run()
    columns = at.dataframe[-1].value
    assert "patient_key" in set(columns["column_name"]) and "birth_date" not in set(columns["column_name"])
    assert columns.set_index("column_name").loc["patient_key", "description"].startswith("Pseudonymous")


# --- data quality ----------------------------------------------------------------------------


def test_data_quality_page_on_the_demo(app_warehouse):
    at = page("data_quality.py")
    assert not at.error
    loads = at.dataframe[0].value
    assert len(loads) == 7
    assert (loads["rows_read"] == loads["rows_accepted"] + loads["rows_rejected"]).all()
    assert loads["reconciled"].all()
    assert loads["rows_rejected"].sum() == 0
    assert any("No rejected rows" in s.value for s in at.success)
    assert any("checks passed" in s.value for s in at.success)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Outcome"] == "Published"
    assert metrics["Rows read / rejected"].endswith("/ 0")


@pytest.fixture
def warehouse_with_rejections(tmp_path, monkeypatch, demo_warehouse):
    """The demo warehouse with three rejected rows and a failed check written into audit."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("""
            INSERT INTO audit.rejected_rows VALUES
                ('labs.csv', 12, 'H-001', 'value', 'abc', 'not a number'),
                ('labs.csv', 40, 'H-002', 'unit', 'kBq', 'unknown unit'),
                ('cycles.csv', 3, 'H-003', 'administration_date', '31/02/2019', 'unparseable date')
        """)
        con.execute("UPDATE audit.load_summary SET rows_read = rows_read + 2, rows_rejected = 2 WHERE source_file = 'labs.csv'")
        con.execute("UPDATE audit.load_summary SET rows_read = rows_read + 1, rows_rejected = 1 WHERE source_file = 'cycles.csv'")
        con.execute("UPDATE audit.check_results SET passed = false, severity = 'WARN' WHERE check_name = 'not_empty' AND asset = 'marts/fct_toxicity'")
    monkeypatch.setenv("PRRT_WAREHOUSE", str(copy))
    st.cache_data.clear()
    yield copy
    st.cache_data.clear()


def test_data_quality_page_rejected_rows_and_failed_checks(warehouse_with_rejections):
    at = page("data_quality.py")
    loads = at.dataframe[0].value
    assert loads["reconciled"].all() and loads["rows_rejected"].sum() == 3
    by_reason = at.dataframe[1].value
    assert set(by_reason["reason"]) == {"not a number", "unknown unit", "unparseable date"}
    assert len(at.dataframe[2].value) == 3
    at.multiselect(key="rejected_file").set_value(["labs.csv"]).run()
    assert set(at.dataframe[2].value["source_file"]) == {"labs.csv"}
    at.multiselect(key="rejected_reason").set_value(["unknown unit"]).run()
    assert at.dataframe[2].value["source_row"].tolist() == [40]
    assert any("1 of 154 checks failed" in e.value or "checks failed" in e.value for e in at.error)
    checks = at.dataframe[3].value
    assert checks["passed"].tolist() == [False]


@pytest.fixture
def warehouse_with_similar_ids(tmp_path, monkeypatch, demo_warehouse):
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("INSERT INTO audit.similar_patient_ids VALUES ('BUMS-244975', 'BUMS-244975', true, 0),"
                    " ('BUMS-244975', 'bums-244975', false, 3)")
    monkeypatch.setenv("PRRT_WAREHOUSE", str(copy))
    st.cache_data.clear()
    yield copy
    st.cache_data.clear()


def test_data_quality_page_lists_similar_record_numbers(warehouse_with_similar_ids):
    at = page("data_quality.py")
    assert "Similar record numbers" in [h.value for h in at.subheader]
    listed = next(f.value for f in at.dataframe if "similar_form" in f.value.columns)
    assert listed["patient_id"].tolist() == ["BUMS-244975", "bums-244975"]
    assert listed["rows_rejected_as_unknown"].tolist() == [0, 3]
