"""No server paths, no identifiers: neither in the snapshot's data nor in the console's instance."""

from __future__ import annotations

import csv
import os
import re
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest

from prrt import sql_console
from prrt.sql_console import run_query
from tests.conftest import DEMO_EXPORT, REPO

DEMO_PATIENT_IDS = {row["patient_id"] for row in csv.DictReader((DEMO_EXPORT / "patients.csv").open())}
# An absolute path of two or more parts (/a/b); not a/b, console://b, or a unit such as /mm3.
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/[\w.@+-]+/[\w.@+-]+")


@pytest.fixture
def warehouse_with_identifiers(tmp_path, demo_warehouse):
    """The demo warehouse with rejected rows holding real demo patient_ids and a birth date."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_warehouse, copy)
    some = sorted(DEMO_PATIENT_IDS)[:2]
    with duckdb.connect(str(copy)) as con:
        con.execute("INSERT INTO audit.rejected_rows VALUES (?, 12, ?, 'birth_date', '1964-06-27', 'unparseable date'),"
                    " ('labs.csv', 40, ?, 'value', ?, 'not a number')", ["patients.csv", some[0], some[1], some[1]])
        assert con.execute("SELECT count(*) FROM audit.refresh_history WHERE raw_dir LIKE '/%'").fetchone()[0] >= 1
    return copy


def server_paths(warehouse: Path) -> set[str]:
    snapshot_dir = sql_console.snapshot(warehouse).parent
    return {str(p) for p in (REPO, warehouse.parent, snapshot_dir, Path(tempfile.gettempdir()),
                             Path.home(), Path(sys.prefix), DEMO_EXPORT.resolve())}


def test_snapshot_holds_no_server_path_and_no_patient_id(warehouse_with_identifiers):
    path = sql_console.snapshot(warehouse_with_identifiers)
    known = server_paths(warehouse_with_identifiers)
    found = []
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute("SELECT schema_name, table_name, column_name FROM duckdb_columns()"
                              " WHERE data_type LIKE '%VARCHAR%' AND NOT internal AND database_name = current_database()").fetchall()
        assert columns
        for schema, table, column in columns:
            values = con.execute(f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM "{schema}"."{table}"'
                                 f' WHERE "{column}" IS NOT NULL').fetchall()
            for (value,) in values:
                if ABSOLUTE_PATH.search(value) or any(k in value for k in known) \
                        or any(pid in value for pid in DEMO_PATIENT_IDS) or value == "1964-06-27":
                    found.append((schema, table, column, value))
        hidden = {(s, t, c) for (s, t), names in sql_console.HIDDEN_COLUMNS.items() for c in names}
        present = {tuple(r) for r in con.execute("SELECT schema_name, table_name, column_name FROM duckdb_columns()").fetchall()}
    assert found == [], found
    assert not hidden & present
    assert ("audit", "rejected_rows", "reason") in present and ("audit", "refresh_history", "run_id") in present


def test_snapshot_files_are_private(warehouse_with_identifiers):
    path = sql_console.snapshot(warehouse_with_identifiers)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_hidden_schemas_include_lineage():
    assert {"ingest", "lineage", "staging", "intermediate"} <= set(sql_console.HIDDEN_SCHEMAS)
    assert not set(sql_console.HIDDEN_SCHEMAS) & set(sql_console.ALLOWED_SCHEMAS)


INTROSPECTION = [
    "SELECT * FROM duckdb_databases()",
    "SELECT name, value FROM duckdb_settings()",
    "SELECT current_setting('allowed_paths') AS p",
    "SELECT current_setting('home_directory') AS h, current_setting('extension_directory') AS e,"
    " current_setting('secret_directory') AS s, current_setting('temp_directory') AS t",
    "SELECT * FROM duckdb_temporary_files()",
    "SELECT * FROM audit.refresh_history",
    "SELECT * FROM audit.rejected_rows",
]


@pytest.mark.parametrize("sql", INTROSPECTION)
def test_instance_shows_no_server_path(warehouse_with_identifiers, sql):
    known = server_paths(warehouse_with_identifiers)
    frame = run_query(warehouse_with_identifiers, sql).frame
    for value in frame.astype(str).to_numpy().ravel():
        assert not ABSOLUTE_PATH.search(value) and not any(k in value for k in known), (sql, value)
        assert not any(pid in value for pid in DEMO_PATIENT_IDS), (sql, value)


def test_error_messages_show_no_server_path(warehouse_with_identifiers):
    known = server_paths(warehouse_with_identifiers)
    for sql in ("SELECT * FROM duckdb_extensions()", "SELECT * FROM read_blob('console://other.duckdb')",
                "SELECT * FROM read_csv('warehouse.duckdb')", "SELECT * FROM glob('*')"):
        with pytest.raises(sql_console.QueryRejected) as rejected:
            run_query(warehouse_with_identifiers, sql)
        message = rejected.value.message
        assert not ABSOLUTE_PATH.search(message) and not any(k in message for k in known), (sql, message)


def test_worker_gets_no_secret_from_the_environment(demo_warehouse, monkeypatch):
    """The worker's environment is PATH, LANG and TZ only: no PRRT_PSEUDONYM_KEY to read."""
    monkeypatch.setenv("PRRT_PSEUDONYM_KEY", "a-secret")
    frame = run_query(demo_warehouse, "SELECT name, value FROM duckdb_settings()").frame
    assert not frame["value"].astype(str).str.contains("a-secret").any()
    assert os.environ["PRRT_PSEUDONYM_KEY"] == "a-secret"
