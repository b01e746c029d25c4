"""The SQL console's sandbox: attacks are refused with a clear message, the process stays
healthy, legitimate queries return the warehouse's numbers."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from prrt import sql_console
from prrt.sql_console import QueryRejected, run_query
from tests.conftest import REPO

# The classic runaway: DuckDB may stop it for memory (it builds one side of the cross
# product) before the timeout, depending on the machine; either way it stops.
RUNAWAY_CROSS_JOIN = "SELECT count(*) FROM range(1000000000000) a, range(1000000000000) b"
# A runaway that needs no memory at all: only the timeout can stop it.
RUNAWAY_CPU = "SELECT count(*) FROM range(1000000000000) a, range(10) b WHERE a.range % 7 = b.range"

# (attack, words the user-facing message must contain)
ATTACKS = {
    "read a file": ("SELECT * FROM read_csv('/etc/passwd')", "cannot read or write files"),
    "read the raw bytes of the warehouse": ("SELECT * FROM read_blob('{warehouse}')", "cannot read or write files"),
    "list the file system": ("SELECT * FROM glob('/*')", "cannot read or write files"),
    "read over HTTP": ("SELECT * FROM read_csv('https://example.com/x.csv')", "cannot read or write files"),
    "write a file": ("COPY marts.dim_patient TO '/tmp/x.csv'", "not COPY"),
    "write from a query": ("COPY (SELECT * FROM marts.dim_patient) TO '/tmp/x.csv'", "not COPY"),
    "export the database": ("EXPORT DATABASE '/tmp/export'", "not EXPORT"),
    "attach a file": ("ATTACH '/tmp/x.duckdb'", "not ATTACH"),
    "attach the warehouse again": ("ATTACH '{warehouse}' AS w2 (READ_ONLY)", "not ATTACH"),
    "install an extension": ("INSTALL httpfs", "extensions cannot be installed or loaded"),
    "load an extension": ("LOAD httpfs", "extensions cannot be installed or loaded"),
    "re-enable external access": ("SET enable_external_access = true", "settings are fixed"),
    "unlock the configuration": ("SET lock_configuration = false", "settings are fixed"),
    "reset the timeout": ("RESET max_execution_time", "settings are fixed"),
    "raise the memory limit by pragma": ("PRAGMA memory_limit = '100GB'", "settings are fixed"),
    "turn on profiling to a file": ("PRAGMA enable_profiling = 'json'", "settings are fixed"),
    "create a table": ("CREATE TABLE marts.x AS SELECT 1", "read-only"),
    "create a table by PIVOT": ("CREATE TABLE x AS PIVOT marts.dim_patient ON sex USING count(*)", "IN list"),
    "delete rows": ("DELETE FROM marts.dim_patient", "read-only"),
    "drop a table": ("DROP TABLE marts.dim_patient", "read-only"),
    "two statements": ("SELECT 1; SELECT 2", "one statement at a time"),
    "a statement after a query": ("SELECT 1; DROP TABLE marts.dim_patient", "one statement at a time"),
    "identifying schema": ("SELECT patient_id, birth_date FROM ingest.patients", "ingest is not available"),
    "identifying schema, fully qualified": ("SELECT * FROM warehouse.ingest.patients", "ingest is not available"),
    # Refused before they run since dynamic SQL is denied (the snapshot has no ingest either:
    # test_engine_refuses_even_without_the_statement_check).
    "identifying schema via query()": ("SELECT * FROM query('SELECT * FROM ingest.patients')", "query() is not available"),
    "identifying schema via query_table()": ("SELECT * FROM query_table('ingest.patients')", "query_table() is not available"),
    "staging view": ("SELECT * FROM staging.stg_patients", "staging is not available"),
    "the app's Python variables": ("SELECT * FROM ATTACKS", "does not exist"),
    "empty": ("  -- nothing\n ;", "Enter a query"),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_rejected_with_a_clear_message(demo_warehouse, name):
    sql, expected = ATTACKS[name]
    with pytest.raises(QueryRejected) as rejected:
        run_query(demo_warehouse, sql.format(warehouse=demo_warehouse), timeout_s=5)
    message = rejected.value.message
    assert expected.lower() in message.lower(), message
    assert "Traceback" not in message and "Stack Trace" not in message
    # ... and the process still answers, from the same published file.
    assert run_query(demo_warehouse, "SELECT count(*) AS n FROM marts.dim_patient").frame["n"].iloc[0] == 16


def test_nothing_was_written(demo_warehouse, tmp_path):
    for sql in ("COPY marts.dim_patient TO '/tmp/prrt_sql_console_x.csv'",):
        with pytest.raises(QueryRejected):
            run_query(demo_warehouse, sql)
    assert not os.path.exists("/tmp/prrt_sql_console_x.csv")
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marts.dim_patient").fetchone()[0] == 16


def test_runaway_query_stops_at_the_timeout(demo_warehouse):
    started = time.perf_counter()
    with pytest.raises(QueryRejected, match="ran longer than 2 s and was stopped"):
        run_query(demo_warehouse, RUNAWAY_CPU, timeout_s=2)
    assert time.perf_counter() - started < 2 + 3
    assert run_query(demo_warehouse, "SELECT 42 AS answer").frame["answer"].iloc[0] == 42


def test_runaway_cross_join_stops(demo_warehouse):
    started = time.perf_counter()
    with pytest.raises(QueryRejected, match="ran longer than 2 s|more than the console's 1GB of memory"):
        run_query(demo_warehouse, RUNAWAY_CROSS_JOIN, timeout_s=2)
    assert time.perf_counter() - started < 2 + 3
    assert run_query(demo_warehouse, "SELECT 42 AS answer").frame["answer"].iloc[0] == 42


def test_memory_hog_stops_at_the_memory_limit(demo_warehouse):
    with pytest.raises(QueryRejected, match="more than the console's 200MB of memory"):
        run_query(demo_warehouse, "SELECT list(range) FROM range(10000000000)", memory_limit="200MB", timeout_s=20)


def test_engine_refuses_even_without_the_statement_check(demo_warehouse):
    """Second line of defence: the locked instance itself refuses what the parser check catches."""
    con = sql_console._sandbox(demo_warehouse, timeout_s=2, memory_limit="500MB", threads=1)
    try:
        for sql in (
            "SET enable_external_access = true",
            "SET lock_configuration = false",
            "SET max_execution_time = 0",
            "PRAGMA memory_limit = '100GB'",
            "SELECT * FROM read_csv('/etc/passwd')",
            f"ATTACH '{demo_warehouse}' AS w2 (READ_ONLY)",
            "COPY marts.dim_patient TO '/tmp/prrt_sql_console_y.csv'",
            "INSTALL httpfs",
            "LOAD httpfs",
            "SELECT * FROM query('SELECT * FROM ingest.patients')",
            "SELECT * FROM query_table('ingest.patients')",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
        settings = dict(con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', 'lock_configuration',"
            " 'autoload_known_extensions', 'autoinstall_known_extensions', 'max_execution_time', 'threads',"
            " 'python_enable_replacements', 'temp_directory')"
        ).fetchall())
        assert settings == {
            "enable_external_access": "false", "lock_configuration": "true",
            "autoload_known_extensions": "false", "autoinstall_known_extensions": "false",
            "max_execution_time": "2000", "threads": "1", "python_enable_replacements": "false",
            "temp_directory": "",
        }
        # The published warehouse file is not attached, its snapshot is, read-only.
        databases = dict(con.execute(
            "SELECT database_name, readonly FROM duckdb_databases() WHERE NOT internal AND database_name <> 'temp'"
        ).fetchall())
        assert databases == {"memory": False, "warehouse": True}
        assert con.execute("SELECT path FROM duckdb_databases() WHERE database_name = 'warehouse'").fetchone()[0] \
            != str(demo_warehouse)
    finally:
        con.close()


def test_snapshot_holds_the_allowed_schemas_only(demo_warehouse):
    """Enforced by construction: what is not in the snapshot file no query can reach."""
    path = sql_console.snapshot(demo_warehouse)
    assert path.parent == demo_warehouse.parent / ".sql_console"
    with duckdb.connect(str(path), read_only=True) as con:
        schemas = {s for (s,) in con.execute("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()}
        columns = {c for (c,) in con.execute("SELECT DISTINCT column_name FROM duckdb_columns()").fetchall()}
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:
        expected = {s for (s,) in con.execute("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()}
    assert schemas == expected & set(sql_console.ALLOWED_SCHEMAS) == set(sql_console.ALLOWED_SCHEMAS)
    assert "birth_date" not in columns
    assert sql_console.snapshot(demo_warehouse) == path  # built once per published version


def test_snapshot_follows_a_new_published_warehouse(demo_warehouse, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_warehouse, warehouse)
    first = sql_console.snapshot(warehouse)
    assert run_query(warehouse, "SELECT count(*) AS n FROM marts.dim_patient").frame["n"].tolist() == [16]
    # A refresh publishes by renaming a new file over the old one.
    replacement = tmp_path / "new.duckdb"
    shutil.copy(demo_warehouse, replacement)
    with duckdb.connect(str(replacement)) as con:
        con.execute("DELETE FROM marts.dim_patient WHERE sex = 'M'")
        females = con.execute("SELECT count(*) FROM marts.dim_patient").fetchone()[0]
    os.replace(replacement, warehouse)
    assert run_query(warehouse, "SELECT count(*) AS n FROM marts.dim_patient").frame["n"].tolist() == [females]
    second = sql_console.snapshot(warehouse)
    assert second != first and not first.exists()
    assert sorted(p.name for p in second.parent.iterdir()) == [second.name]


def test_console_sees_the_allowed_schemas_only(demo_warehouse):
    schemas = run_query(demo_warehouse, "SELECT DISTINCT schema_name FROM duckdb_tables() ORDER BY ALL").frame
    assert schemas["schema_name"].tolist() == sorted(sql_console.ALLOWED_SCHEMAS)
    columns = run_query(demo_warehouse, "SELECT column_name FROM information_schema.columns").frame["column_name"]
    assert "birth_date" not in set(columns)
    # No patient_id anywhere, audit.rejected_rows included (HIDDEN_COLUMNS: analysts only).
    where = run_query(demo_warehouse, "SELECT DISTINCT table_schema || '.' || table_name AS t FROM information_schema.columns"
                                      " WHERE column_name = 'patient_id'").frame["t"].tolist()
    assert where == []


def test_legit_queries_return_the_warehouse_numbers(demo_warehouse, demo_db):
    result = run_query(demo_warehouse, "SELECT count(*) AS patients FROM marts.dim_patient")
    assert result.frame["patients"].tolist() == [16] and not result.truncated and result.elapsed_s >= 0
    expected = demo_db.execute("SELECT count(*) FROM marts.fct_lab_result WHERE ctcae_grade >= 1").fetchone()[0]
    got = run_query(demo_warehouse, "FROM marts.fct_lab_result SELECT count(*) AS n WHERE ctcae_grade >= 1;  -- comment")
    assert got.frame["n"].tolist() == [expected]
    # every documented column of dim_patient (dbt/models/marts/dim_patient.yml), none hidden from analysts
    documented = yaml.safe_load((REPO / "dbt" / "models" / "marts" / "dim_patient.yml").read_text())
    columns = [c["name"] for c in documented["models"][0]["columns"]]
    assert run_query(demo_warehouse, "DESCRIBE marts.dim_patient").frame["column_name"].tolist() == columns
    pivot = run_query(demo_warehouse, "PIVOT marts.dim_patient ON sex IN ('F', 'M') USING count(*)").frame
    assert int(pivot["F"].sum() + pivot["M"].sum()) == 16


@pytest.mark.parametrize("title", list(sql_console.EXAMPLES))
def test_examples_run(demo_warehouse, title):
    frame = run_query(demo_warehouse, sql_console.EXAMPLES[title]).frame
    assert len(frame.columns) > 0


def test_table_2_example_matches_the_marts(demo_warehouse, demo_db):
    frame = run_query(demo_warehouse, sql_console.EXAMPLES["Table 2: patients by worst CTCAE grade"]).frame
    anemia = frame.set_index("ctcae_term").loc["Anemia"]
    expected = dict(demo_db.execute(
        "SELECT worst_grade, count(*) FROM marts.fct_toxicity WHERE ctcae_term = 'Anemia' AND worst_grade > 0 GROUP BY ALL"
    ).fetchall())
    assert (anemia["grade_1"], anemia["grade_2"]) == (expected.get(1, 0), expected.get(2, 0))


def test_row_cap(demo_warehouse):
    capped = run_query(demo_warehouse, "SELECT * FROM range(1000000)", max_rows=250)
    assert len(capped.frame) == 250 and capped.truncated
    assert capped.frame["range"].tolist() == list(range(250))
    exact = run_query(demo_warehouse, "SELECT * FROM range(250)", max_rows=250)
    assert len(exact.frame) == 250 and not exact.truncated


def test_row_cap_never_materialises_a_huge_result(demo_warehouse):
    # 10^12 rows would take hours and terabytes; the LIMIT stops the scan after max_rows + 1.
    started = time.perf_counter()
    capped = run_query(demo_warehouse, "SELECT * FROM range(1000000000000)", max_rows=10_000, timeout_s=5)
    assert capped.truncated and len(capped.frame) == 10_000
    assert time.perf_counter() - started < 5


def test_parse_errors_are_shown_as_messages(demo_warehouse):
    with pytest.raises(QueryRejected, match="syntax error"):
        run_query(demo_warehouse, "SELEC 1")
    with pytest.raises(QueryRejected, match="nosuch"):
        run_query(demo_warehouse, "SELECT * FROM marts.nosuch")


def test_missing_warehouse(tmp_path):
    with pytest.raises(QueryRejected, match="prrt refresh"):
        run_query(tmp_path / "nothing.duckdb", "SELECT 1")


def test_app_connection_is_not_affected(demo_warehouse, demo_db):
    """The sandbox is its own DuckDB instance: locking it does not lock the app's connections."""
    with pytest.raises(QueryRejected):
        run_query(demo_warehouse, "SELECT * FROM ingest.patients")
    assert demo_db.execute("SELECT current_setting('lock_configuration')").fetchone()[0] is False
    assert demo_db.execute("SELECT current_setting('enable_external_access')").fetchone()[0] is True


def test_schema_browser_descriptions(demo_db):
    columns = demo_db.execute(
        "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns()"
        " WHERE schema_name IN ('marts', 'audit')"
    ).df()
    described = sql_console.describe_columns(columns)
    key = described.set_index(["schema_name", "table_name", "column_name"])["description"]
    assert "Pseudonymous patient identifier" in key[("marts", "dim_patient", "patient_key")]
    assert key[("audit", "load_summary", "rows_read")] == ""
    assert "One row per patient" in sql_console.table_descriptions()[("marts", "dim_patient")]
    assert sql_console.describe_columns(columns, manifest=Path("/nonexistent"))["description"].eq("").all()
