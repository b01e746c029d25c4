"""Look for identifying values in a DuckDB database: every column of every table and view,
as text, compared with the secrets (exact values, and as substrings for longer texts)."""

from __future__ import annotations

import duckdb


def tables(con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...] | None = None) -> list[tuple[str, str, str]]:
    """(schema, table, column) of every user table and view (all schemas, or only ``schemas``)."""
    rows = con.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns"
        " WHERE table_catalog = current_database() ORDER BY ALL"
    ).fetchall()
    return [r for r in rows if schemas is None or r[0] in schemas]


def find_secrets(con: duckdb.DuckDBPyConnection, secrets: set[str],
                 schemas: tuple[str, ...] | None = None) -> list[tuple[str, str, str, str]]:
    """(schema, table, column, secret) wherever a column's value, cast to text, equals a secret
    or (secrets of 6+ characters) contains one."""
    found = []
    for schema, table, column in tables(con, schemas):
        ref = f'"{schema}"."{table}"'
        text = f'CAST("{column}" AS VARCHAR)'
        hits = con.execute(
            f"SELECT DISTINCT s FROM {ref}, unnest(?) t(s) WHERE {text} = s"
            f" OR (length(s) >= 6 AND contains({text}, s))",
            [sorted(secrets)],
        ).fetchall()
        found += [(schema, table, column, h[0]) for h in hits]
    assert tables(con, schemas), "no tables to scan"
    return found
