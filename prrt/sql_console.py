"""The app's SQL console: one read-only query against a sanitised snapshot of the warehouse.

Why a snapshot. DuckDB has no per-schema privileges, and a check of the SQL text cannot be
complete. So the user's SQL never runs where identifying data is reachable: once per
published warehouse version (path, inode, mtime) the tables of the allowed schemas
(``marts``, ``analytics``, ``reference``, ``audit``) are copied into a separate DuckDB file,
the *snapshot*, in ``.sql_console/`` next to the warehouse (a private temporary directory
when that is not writable; directory 0700, files 0600). ``ingest`` (patient_id, birth_date),
``lineage``, ``staging`` and ``intermediate`` are not in it, not even their names, and neither
are the columns of `HIDDEN_COLUMNS` (identifiers and server paths of the audit schema: the
console is for analysts on pseudonymised data). No SQL trick can reach what is not in the file.

Why a child process. Each query runs in a fresh ``python -I -m prrt.sql_console_worker``
(see that module), never in the Streamlit server: the worker caps its own address space
(``RLIMIT_AS``), the parent kills it at a wall-clock deadline and reads at most
``max_result_bytes`` of its reply (an Arrow IPC stream), so no query can grow the server's
memory. In the worker a fresh in-memory DuckDB instance ATTACHes the snapshot READ_ONLY as
catalog ``warehouse`` through a ``console://`` file system (so no server path is visible in
``duckdb_databases()`` or the settings) and is locked before any user SQL:
``enable_external_access = false``, extension autoload/install off, no persistent secrets,
no Python replacement scans, ``memory_limit``, ``threads``, ``temp_directory = ''``,
``max_execution_time``, neutral home/extension/secret directories, ``lock_configuration``.

The statement is checked with DuckDB's own parser: exactly one SELECT (WITH, FROM-first,
VALUES, DESCRIBE, SHOW, SUMMARIZE, PIVOT with an IN list) or EXPLAIN [ANALYZE], and no hash
or dynamic-SQL function anywhere in its serialised parse tree (fail closed). DuckDB itself
then caps the output: every cell that is not a number, date or time is cast to VARCHAR and
cut at ``max_cell_chars`` with a visible marker, and a LIMIT of ``max_rows + 1`` stops the
scan. One query at a time per user. Every failure the user can cause is a `QueryRejected`
whose one-line message names the rule, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from . import config
from . import sql_console_worker as worker_module

# Schemas the console exposes. `ingest` and `lineage` (identifying), `staging` and
# `intermediate` (dbt's working layers) are not copied into the snapshot at all.
ALLOWED_SCHEMAS: tuple[str, ...] = ("marts", "analytics", "reference", "audit")
HIDDEN_SCHEMAS: tuple[str, ...] = ("ingest", "lineage", "staging", "intermediate")

# THE one place that says which columns of the allowed schemas stay out of the snapshot:
# (schema, table) -> {column: why}. Every audit table was inspected (rejected_rows,
# load_summary, ingested_files, refresh_plan, refresh_history, run_log, check_results,
# similar_patient_ids);
# the others hold file names, counts, run ids, fingerprints and timestamps only.
HIDDEN_COLUMNS: dict[tuple[str, str], dict[str, str]] = {
    ("audit", "rejected_rows"): {
        "patient_id": "the hospital's patient identifier",
        "value": "the rejected value, which can be a birth date or a record number",
    },
    ("audit", "similar_patient_ids"): {
        "patient_id": "the hospital's patient identifier",
        "similar_form": "the record number upper-cased and without leading zeros: still an identifier",
    },
    ("audit", "refresh_history"): {
        "raw_dir": "the export folder: an absolute path of the server",
    },
}
SNAPSHOT_DIR_NAME = ".sql_console"

MAX_SQL_CHARS = 100_000
# The worker's address-space cap (RLIMIT_AS): DuckDB's memory_limit plus room for the
# interpreter, DuckDB's and Arrow's code, thread stacks and the allocations DuckDB does not
# count (measured: an idle worker is ~115 MB resident and runs with 1 GB of address space).
WORKER_HEADROOM_BYTES = 1 * 2**30
WORKER_START_GRACE_S = 10  # wall-clock kill at timeout_s + this (start-up on a busy machine)


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
-- (endpoint 'PFS', 'TTP', 'DOR' for the others)
SELECT endpoint, stratum_variable, stratum, n, median_months, ci_lower, ci_upper, ci_method
FROM analytics.km_median
WHERE endpoint = 'OS' AND stratum_variable = 'all'
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
    worker_peak_rss_kb: int = 0  # the worker process's peak resident memory
    total_s: float = 0.0  # the whole call, worker start-up included


_running: set[str] = set()
_running_lock = threading.Lock()


def run_query(
    warehouse: Path,
    sql: str,
    *,
    user: str = "local",
    max_rows: int = 10_000,
    timeout_s: float = 10,
    memory_limit: str = "1GB",
    threads: int = 2,
    max_cell_chars: int = 1_000,
    max_result_bytes: int = 64 * 2**20,
) -> QueryResult:
    """Run one read-only statement against the allowed schemas of `warehouse`, in a worker
    process, for `user` (one query at a time per user)."""
    if max_rows < 1 or timeout_s <= 0 or max_cell_chars < 1 or max_result_bytes < 1:
        raise ValueError("max_rows, max_cell_chars, max_result_bytes must be >= 1 and timeout_s > 0")
    warehouse = Path(warehouse)
    if not warehouse.is_file():
        raise QueryRejected(f"No warehouse at {warehouse}: run `prrt refresh` first.")
    if len(sql or "") > MAX_SQL_CHARS:
        raise QueryRejected(f"The query is longer than {MAX_SQL_CHARS:,} characters.")
    with _running_lock:
        if user in _running:
            raise QueryRejected("You already have a query running: wait for it to finish (one query at a time).")
        _running.add(user)
    try:
        try:
            snapshot_file = snapshot(warehouse)
        except (duckdb.Error, OSError) as exc:
            raise QueryRejected(f"The warehouse could not be opened for the console ({type(exc).__name__}).") from None
        request = {
            "sql": sql or "", "snapshot": str(snapshot_file), "max_rows": max_rows, "timeout_s": timeout_s,
            "memory_limit": memory_limit, "threads": threads, "max_cell_chars": max_cell_chars,
            "max_result_bytes": max_result_bytes, "parent_pid": os.getpid(),
            "address_space_bytes": _parse_bytes(memory_limit) + WORKER_HEADROOM_BYTES,
            "allowed_schemas": list(ALLOWED_SCHEMAS), "hidden_schemas": list(HIDDEN_SCHEMAS),
        }
        return _run_worker(request, deadline_s=timeout_s + WORKER_START_GRACE_S)
    finally:
        with _running_lock:
            _running.discard(user)


def _run_worker(request: dict, *, deadline_s: float) -> QueryResult:
    import pyarrow as pa

    started = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "-I", "-m", "prrt.sql_console_worker"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        cwd=Path(request["snapshot"]).parent,
        # No inherited secrets (PRRT_PSEUDONYM_KEY...) and no HOME: the worker needs neither.
        env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "TZ": os.environ.get("TZ", "UTC")},
        start_new_session=True,
    )
    reply, cap, timed_out, too_big = bytearray(), request["max_result_bytes"] + 2**16, False, False
    try:
        worker.stdin.write(json.dumps(request).encode())
        worker.stdin.close()
        with selectors.DefaultSelector() as selector:
            selector.register(worker.stdout, selectors.EVENT_READ)
            while True:
                left = deadline_s - (time.perf_counter() - started)
                if left <= 0:
                    timed_out = True
                    break
                if not selector.select(timeout=left):
                    continue
                chunk = os.read(worker.stdout.fileno(), 2**20)
                if not chunk:
                    break
                reply += chunk
                if len(reply) > cap:
                    too_big = True
                    break
    except OSError:
        pass
    finally:
        if timed_out or too_big:
            worker.kill()
        worker.stdout.close()
        _, status, usage = os.wait4(worker.pid, 0)
        worker.returncode = os.waitstatus_to_exitcode(status)
    total = time.perf_counter() - started
    if timed_out:
        raise QueryRejected(worker_module.timeout_message(request["timeout_s"]))
    if too_big:
        raise QueryRejected(f"The result is larger than the console's {request['max_result_bytes'] // 2**20} MB: "
                            "select fewer columns or rows.")
    line, _, payload = bytes(reply).partition(b"\n")
    try:
        header = json.loads(line)
    except ValueError:
        # No reply: the worker died -- the kernel refused it memory (RLIMIT_AS) or it crashed.
        raise QueryRejected(worker_module.memory_message(request["memory_limit"])) from None
    last_query.update(peak_rss_kb=usage.ru_maxrss, total_s=total)
    if not header.get("ok"):
        raise QueryRejected(_without_server_paths(str(header.get("message") or "The query failed."), request))
    with pa.ipc.open_stream(payload) as stream:
        table = stream.read_all()
    frame = table.to_pandas()
    del table
    truncated = len(frame) > request["max_rows"]
    if truncated:
        frame = frame.iloc[: request["max_rows"]]
    return QueryResult(frame=frame, truncated=truncated, elapsed_s=float(header["elapsed_s"]),
                       worker_peak_rss_kb=int(usage.ru_maxrss), total_s=total)


# The last worker's peak resident memory (kB) and wall time (s), also for rejected queries:
# what tests/sql_console/test_red_team.py measures.
last_query: dict[str, float] = {}


def _without_server_paths(message: str, request: dict) -> str:
    """Second line of defence: no message names the snapshot's directory."""
    directory = str(Path(request["snapshot"]).parent)
    return message.replace(request["snapshot"], "warehouse.duckdb").replace(directory, "…")


def _parse_bytes(limit: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B)?\s*", limit, re.IGNORECASE)
    if not match:
        raise ValueError(f"memory_limit {limit!r}: use e.g. '1GB' or '500MB'")
    unit = (match.group(2) or "B").upper().replace("I", "")
    return int(float(match.group(1)) * {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[unit])


def _sandbox(warehouse: Path, *, timeout_s: float, memory_limit: str, threads: int) -> duckdb.DuckDBPyConnection:
    """The worker's locked instance, built in this process (for tests of the engine's own refusals)."""
    return worker_module.sandbox(str(snapshot(warehouse)), timeout_s=timeout_s, memory_limit=memory_limit,
                                 threads=threads)


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
                os.chmod(partial, 0o600)
                after = os.stat(warehouse)
                if (after.st_ino, after.st_mtime_ns) != (before.st_ino, before.st_mtime_ns):
                    continue  # replaced while copying: copy the new one
                os.replace(partial, path)
            finally:
                for leftover in directory.glob(f"{partial.name}*"):
                    if leftover.is_dir():
                        shutil.rmtree(leftover, ignore_errors=True)
                    else:
                        leftover.unlink(missing_ok=True)
            for old in directory.glob(f"{tag}-*.duckdb"):
                if old != path:
                    old.unlink(missing_ok=True)  # a session still reading it keeps its open file
            return path
    raise OSError(f"{warehouse} kept changing while the console copied it")


def _snapshot_dir(warehouse: Path) -> Path:
    """`.sql_console/` next to the warehouse (mode 0700), else a private directory in the
    system's temporary directory."""
    for directory in (
        warehouse.parent / SNAPSHOT_DIR_NAME,
        Path(tempfile.gettempdir()) / f"prrt-sql-console-{os.getuid() if hasattr(os, 'getuid') else 'user'}",
    ):
        try:
            directory.mkdir(mode=0o700, exist_ok=True)
            if directory.stat().st_uid == os.getuid():
                os.chmod(directory, 0o700)  # mkdir's mode is subject to the umask; an old one may be wider
        except OSError:
            continue
        if os.access(directory, os.W_OK | os.X_OK):
            return directory
    raise OSError("no writable directory for the SQL console's snapshot")


def _copy_allowed_schemas(warehouse: Path, target: Path) -> None:
    """Copy the allowed schemas of `warehouse` into a new file `target`, without HIDDEN_COLUMNS
    (made 0600 by the caller; the 0700 directory keeps it private meanwhile)."""
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
            present = {c for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = 'source'"
                " AND schema_name = $1 AND table_name = $2", [schema, table]).fetchall()}
            hidden = [c for c in HIDDEN_COLUMNS.get((schema, table), {}) if c in present]
            columns = f"* EXCLUDE ({', '.join(map(_ident, hidden))})" if hidden else "*"
            con.execute(f"CREATE TABLE snapshot.{name} AS SELECT {columns} FROM source.{name}")
        con.execute("DETACH snapshot")
        con.execute("DETACH source")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


# --- schema browser ----------------------------------------------------------------------


def visible_columns(columns: pd.DataFrame) -> pd.DataFrame:
    """`columns` (schema_name, table_name, column_name, ...) without HIDDEN_COLUMNS."""
    hidden = {(s, t, c) for (s, t), names in HIDDEN_COLUMNS.items() for c in names}
    keep = [(s, t, c) not in hidden for s, t, c in zip(columns["schema_name"], columns["table_name"], columns["column_name"])]
    return columns[keep].reset_index(drop=True)


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
