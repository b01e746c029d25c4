"""The app's SQL console: one read-only query against a sanitised snapshot of the warehouse.

Why a snapshot. DuckDB has no per-schema privileges, and a check of the SQL text cannot be
complete (``query('SELECT ...')``, ``query_table(...)`` build table references from
strings). So the user's SQL never runs where identifying data is reachable: once per
published warehouse version (path, inode, mtime) the tables of the allowed schemas
(``marts``, ``analytics``, ``reference``, ``audit``) are copied into a separate DuckDB file,
the *snapshot*, in ``.sql_console/`` next to the warehouse (a private temporary directory
when that is not writable). ``ingest`` (patient_id, birth_date), ``staging`` and
``intermediate`` are not in it, not even their names; no SQL trick can reach data that is
not in the file. A file rather than an in-memory copy per query keeps memory flat at any
size (a 100,000-patient warehouse has ~10 M lab rows); the copy costs seconds once a night.

Each call then starts a fresh in-memory DuckDB *instance* (its own, never the app's cached
warehouse connections), ATTACHes the snapshot READ_ONLY as catalog ``warehouse`` (so dbt's
``"warehouse"."marts"."dim_patient"`` names work) and locks it down before any user SQL:

- ``enable_external_access = false``: no file or network reads or writes (read_csv,
  read_blob, glob, COPY, EXPORT), no ATTACH of files, no INSTALL/LOAD; only the snapshot
  (and its WAL names, which DuckDB allows for an attached file) stay reachable;
- extension autoload/autoinstall off, community extensions and persistent secrets off,
  Python replacement scans off (a query cannot read the app's DataFrames by name);
- ``memory_limit``, ``threads``, ``temp_directory = ''`` (nothing spills to disk: an
  over-large query fails with out-of-memory instead), ``max_execution_time`` (DuckDB's
  statement timeout, in ms; a watchdog thread calls ``interrupt()`` as a second line);
- ``lock_configuration = true``: SET / RESET / PRAGMA cannot undo any of the above.

On top of the engine's guarantees the statement is checked with DuckDB's own parser:
exactly one statement, of type SELECT (which includes WITH, FROM-first, VALUES, DESCRIBE,
SHOW, SUMMARIZE, PIVOT with an IN list) or EXPLAIN. The result is capped by a LIMIT of
``max_rows + 1`` on the relation, so a huge result is never materialised. The snapshot is
attached read-only and the instance is discarded when the call ends: nothing persists.
Every failure the user can cause is a `QueryRejected` whose message names the rule, never
a traceback.

The audit schema stays visible although ``audit.rejected_rows`` holds ``patient_id`` (and
the rejected value): data managers need them to find and fix a rejected row in the
clinical system, and the console is part of the data-management app (see the README).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from . import config

# Schemas the console exposes. `ingest` (identifying), `staging` and `intermediate` are not.
ALLOWED_SCHEMAS: tuple[str, ...] = ("marts", "analytics", "reference", "audit")
HIDDEN_SCHEMAS: tuple[str, ...] = ("ingest", "staging", "intermediate")
SNAPSHOT_DIR_NAME = ".sql_console"

_READ_STATEMENTS = {"SELECT", "EXPLAIN"}
_STATEMENT_HINTS = {
    "SET": "settings are fixed in the console",
    "PRAGMA": "settings are fixed in the console",
    "CALL": "settings are fixed in the console",
    "VARIABLE_SET": "settings are fixed in the console",
    "ATTACH": "the console sees the published warehouse only",
    "DETACH": "the console sees the published warehouse only",
    "LOAD": "extensions cannot be installed or loaded",
    "COPY": "it cannot write files: use the Download CSV button",
    "EXPORT": "it cannot write files: use the Download CSV button",
    # DuckDB makes a PIVOT without an IN list (and CREATE ... AS PIVOT) a multi-statement.
    "MULTI": "give PIVOT an explicit IN list, e.g. PIVOT marts.dim_patient ON sex IN ('F', 'M') USING count(*)",
}
_WRITE_HINT = "the warehouse is read-only here"


# Starting points offered by the app's SQL page (title -> query).
EXAMPLES: dict[str, str] = {
    "Table 2: patients by worst CTCAE grade": """\
-- Table 2 of the paper: patients by worst post-baseline CTCAE v4.03 grade
SELECT
    ctcae_term,
    count(*) FILTER (worst_grade = 1) AS grade_1,
    count(*) FILTER (worst_grade = 2) AS grade_2,
    count(*) FILTER (worst_grade = 3) AS grade_3,
    count(*) FILTER (worst_grade = 4) AS grade_4,
    count(*) FILTER (worst_grade >= 3) AS grade_3_or_4,
    count(*) AS patients
FROM marts.fct_toxicity
GROUP BY ctcae_term
ORDER BY ctcae_term
""",
    "Kaplan-Meier median overall survival": """\
-- Median overall survival (months), with R survfit's three confidence-interval methods
SELECT stratum_variable, stratum, n, median_months, ci_lower, ci_upper, ci_method
FROM analytics.km_median
WHERE stratum_variable = 'all'
ORDER BY ci_method
""",
    "Rejected rows by reason": """\
-- Rows of the last export that did not make it into the warehouse, by file and reason
SELECT source_file, reason, count(*) AS rows, min(source_row) AS first_line
FROM audit.rejected_rows
GROUP BY ALL
ORDER BY rows DESC, source_file, reason
""",
    "Best overall response by primary site": """\
-- RECIST 1.1 best overall response (unconfirmed) by primary tumour site, treated patients
SELECT primary_site, best_overall_response, count(*) AS patients
FROM marts.dim_patient
WHERE is_treated
GROUP BY ALL
ORDER BY ALL
""",
    "Tables and columns": """\
-- What the console can see
SELECT table_schema, table_name, column_name, data_type
FROM information_schema.columns
ORDER BY table_schema, table_name, ordinal_position
""",
}


class QueryRejected(Exception):
    """A query the console refused or stopped; `message` is safe to show the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class QueryResult:
    frame: pd.DataFrame
    truncated: bool  # more than max_rows rows: only the first max_rows are in `frame`
    elapsed_s: float  # running and fetching the user's query (not the sandbox set-up)


def run_query(
    warehouse: Path,
    sql: str,
    *,
    max_rows: int = 10_000,
    timeout_s: float = 10,
    memory_limit: str = "1GB",
    threads: int = 2,
) -> QueryResult:
    """Run one read-only statement against the allowed schemas of `warehouse`."""
    if max_rows < 1 or timeout_s <= 0:
        raise ValueError("max_rows must be >= 1 and timeout_s > 0")
    warehouse = Path(warehouse)
    if not warehouse.is_file():
        raise QueryRejected(f"No warehouse at {warehouse}: run `prrt refresh` first.")
    con = _sandbox(warehouse, timeout_s=timeout_s, memory_limit=memory_limit, threads=threads)
    try:
        statement = _single_read_statement(con, sql)
        watchdog = threading.Timer(timeout_s + 2, con.interrupt)
        watchdog.daemon = True
        started = time.perf_counter()
        watchdog.start()
        try:
            frame = con.sql(_without_tail(statement.query)).limit(max_rows + 1).df()
        except duckdb.Error as exc:
            raise QueryRejected(_user_message(exc, timeout_s, memory_limit)) from None
        finally:
            watchdog.cancel()
        elapsed = time.perf_counter() - started
    finally:
        con.close()
    truncated = len(frame) > max_rows
    if truncated:
        frame = frame.iloc[:max_rows]
    return QueryResult(frame=frame, truncated=truncated, elapsed_s=elapsed)


def _sandbox(warehouse: Path, *, timeout_s: float, memory_limit: str, threads: int) -> duckdb.DuckDBPyConnection:
    """A fresh, locked in-memory instance with the warehouse's snapshot attached read-only."""
    con = duckdb.connect(
        ":memory:",
        config={
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
            "allow_community_extensions": False,
            "allow_persistent_secrets": False,
            "python_enable_replacements": False,
            "memory_limit": memory_limit,
            "threads": threads,
            "temp_directory": "",
        },
    )
    try:
        for attempt in (1, 2):
            try:
                con.execute(f"ATTACH {_literal(snapshot(warehouse))} AS warehouse (READ_ONLY)")
                break
            except duckdb.IOException:
                if attempt == 2:  # a refresh published a new warehouse meanwhile: one retry
                    raise
        con.execute("USE warehouse")
        con.execute("SET enable_external_access = false")
        con.execute(f"SET max_execution_time = {max(1, round(timeout_s * 1000))}")
        con.execute("SET lock_configuration = true")
    except (duckdb.Error, OSError) as exc:
        con.close()
        raise QueryRejected(f"The warehouse could not be opened for the console ({type(exc).__name__}).") from None
    except BaseException:
        con.close()
        raise
    return con


_snapshot_lock = threading.Lock()


def snapshot(warehouse: Path) -> Path:
    """The console's copy of `warehouse`'s allowed schemas, built once per published version.

    Named by a hash of the warehouse's path and its (inode, mtime), which change when a
    refresh renames a new file over it; older snapshots of the same warehouse are removed.
    """
    warehouse = Path(warehouse).resolve()
    directory = _snapshot_dir(warehouse)
    tag = hashlib.sha256(str(warehouse).encode()).hexdigest()[:16]
    for _ in range(3):
        before = os.stat(warehouse)
        path = directory / f"{tag}-{before.st_ino}-{before.st_mtime_ns}.duckdb"
        if path.exists():
            return path
        with _snapshot_lock:
            if path.exists():
                return path
            partial = directory / f"{path.name}.{os.getpid()}-{threading.get_ident()}.partial"
            try:
                _copy_allowed_schemas(warehouse, partial)
                after = os.stat(warehouse)
                if (after.st_ino, after.st_mtime_ns) != (before.st_ino, before.st_mtime_ns):
                    continue  # replaced while copying: copy the new one
                os.replace(partial, path)
            finally:
                for leftover in directory.glob(f"{partial.name}*"):
                    leftover.unlink(missing_ok=True)
            for old in directory.glob(f"{tag}-*.duckdb"):
                if old != path:
                    old.unlink(missing_ok=True)  # a session still reading it keeps its open file
            return path
    raise OSError(f"{warehouse} kept changing while the console copied it")


def _snapshot_dir(warehouse: Path) -> Path:
    """`.sql_console/` next to the warehouse (same protection as the warehouse itself), else a
    private directory in the system's temporary directory."""
    for directory in (
        warehouse.parent / SNAPSHOT_DIR_NAME,
        Path(tempfile.gettempdir()) / f"prrt-sql-console-{os.getuid() if hasattr(os, 'getuid') else 'user'}",
    ):
        try:
            directory.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            continue
        if os.access(directory, os.W_OK | os.X_OK):
            return directory
    raise OSError("no writable directory for the SQL console's snapshot")


def _copy_allowed_schemas(warehouse: Path, target: Path) -> None:
    with duckdb.connect(":memory:", config={"autoload_known_extensions": False,
                                            "autoinstall_known_extensions": False}) as con:
        con.execute(f"SET temp_directory = {_literal(target.parent / (target.name + '.tmp'))}")
        con.execute(f"ATTACH {_literal(warehouse)} AS source (READ_ONLY)")
        con.execute(f"ATTACH {_literal(target)} AS snapshot")
        relations = con.execute(
            """
            SELECT schema_name, table_name FROM duckdb_tables()
            WHERE database_name = 'source' AND list_contains($allowed, schema_name)
            UNION ALL
            SELECT schema_name, view_name FROM duckdb_views()
            WHERE database_name = 'source' AND NOT internal AND list_contains($allowed, schema_name)
            ORDER BY ALL
            """,
            {"allowed": list(ALLOWED_SCHEMAS)},
        ).fetchall()
        for schema in ALLOWED_SCHEMAS:
            con.execute(f"CREATE SCHEMA snapshot.{_ident(schema)}")
        for schema, table in relations:
            name = f"{_ident(schema)}.{_ident(table)}"
            con.execute(f"CREATE TABLE snapshot.{name} AS FROM source.{name}")
        con.execute("DETACH snapshot")
        con.execute("DETACH source")


def _single_read_statement(con: duckdb.DuckDBPyConnection, sql: str):
    try:
        statements = con.extract_statements(sql or "")
    except duckdb.Error as exc:
        raise QueryRejected(_clean(str(exc))) from None
    if not statements:
        raise QueryRejected("Enter a query.")
    if len(statements) > 1:
        raise QueryRejected(f"Run one statement at a time (found {len(statements)}).")
    statement = statements[0]
    kind = str(statement.type).rsplit(".", 1)[-1]
    if kind not in _READ_STATEMENTS:
        hint = _STATEMENT_HINTS.get(kind, _WRITE_HINT)
        raise QueryRejected(
            f"Only read-only queries (SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) run in "
            f"the console, not {kind}: {hint}."
        )
    return statement


def _without_tail(sql: str) -> str:
    """`sql` without its trailing `;` and comments, so that it can be wrapped in a LIMIT."""
    end = len(sql)
    for offset, kind in reversed(duckdb.tokenize(sql)):
        if kind == duckdb.token_type.comment or (kind == duckdb.token_type.operator and sql[offset] == ";"):
            end = offset
        else:
            break
    return sql[:end].rstrip()


def _user_message(exc: duckdb.Error, timeout_s: float, memory_limit: str) -> str:
    text = str(exc)
    if isinstance(exc, duckdb.InterruptException):
        return (f"The query ran longer than {timeout_s:g} s and was stopped. Narrow it down "
                "(filters, LIMIT, fewer joins) or run it with the duckdb CLI.")
    if isinstance(exc, duckdb.OutOfMemoryException):
        return (f"The query needed more than the console's {memory_limit} of memory and was stopped. "
                "Aggregate or filter more, or run it with the duckdb CLI.")
    if isinstance(exc, duckdb.PermissionException):
        return ("The console cannot read or write files, attach databases or load extensions: "
                f"it sees the warehouse's {', '.join(ALLOWED_SCHEMAS)} schemas only.")
    if "configuration has been locked" in text:
        return "Settings are fixed in the console and cannot be changed."
    hidden = re.search(r'schema "(?:[^"]*\.)?(\w+)" does not exist', text)
    if hidden and hidden.group(1) in HIDDEN_SCHEMAS:
        return (f"Schema {hidden.group(1)} is not available in the console"
                + (" (it holds identifying data: patient_id, birth_date)" if hidden.group(1) == "ingest" else "")
                + f". The console sees {', '.join(ALLOWED_SCHEMAS)}.")
    return _clean(text)


def _clean(message: str) -> str:
    """DuckDB's message without the internal stack trace some errors carry."""
    return message.split("\n\nStack Trace", 1)[0].strip()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


# --- schema browser ----------------------------------------------------------------------


def describe_columns(columns: pd.DataFrame, manifest: Path | None = None) -> pd.DataFrame:
    """`columns` (schema_name, table_name, column_name, data_type) plus dbt's descriptions.

    Descriptions come from dbt's manifest (doc blocks resolved; dbt does not persist them
    into DuckDB comments here); tables dbt does not build (analytics, audit) get ''.
    """
    docs = _dbt_docs(manifest)
    described = columns.copy()
    described["description"] = [
        docs.get((s, t, c), "")
        for s, t, c in zip(described["schema_name"], described["table_name"], described["column_name"])
    ]
    return described


def table_descriptions(manifest: Path | None = None) -> dict[tuple[str, str], str]:
    """dbt's description of each model and seed in the allowed schemas, keyed (schema, table)."""
    return {(s, t): text for (s, t, c), text in _dbt_docs(manifest).items() if c == ""}


def _dbt_docs(manifest: Path | None) -> dict[tuple[str, str, str], str]:
    """(schema, table, column) -> description; column '' is the table's. {} without a manifest."""
    manifest = manifest or config.DBT_PROJECT_DIR / "target" / "manifest.json"
    try:
        nodes = json.loads(Path(manifest).read_text())["nodes"].values()
    except (OSError, ValueError, KeyError):
        return {}
    docs: dict[tuple[str, str, str], str] = {}
    for node in nodes:
        if node.get("resource_type") not in ("model", "seed") or node.get("schema") not in ALLOWED_SCHEMAS:
            continue
        table = node.get("alias") or node["name"]
        docs[(node["schema"], table, "")] = " ".join((node.get("description") or "").split())
        for column in node.get("columns", {}).values():
            docs[(node["schema"], table, column["name"])] = " ".join((column.get("description") or "").split())
    return docs
