"""The SQL console's worker: runs ONE user query in a short-lived child process.

``prrt.sql_console.run_query`` starts ``python -I -m prrt.sql_console_worker`` per query (a
fresh interpreter, never a fork of the threaded Streamlit server), writes one JSON request on
its stdin and reads one reply on its stdout: a JSON header line, then (on success) the result
as an Arrow IPC stream. Why a process: a query's memory -- DuckDB's, but also the strings and
lists DuckDB hands out outside its buffer manager (``repeat('x', 100000000)`` is 100 MB per
cell), Arrow's -- then lives in a process that the kernel caps (``RLIMIT_AS``, set here before
DuckDB is imported) and that the parent kills at a wall-clock deadline; when it ends, all of
it is gone. The Streamlit server only ever holds the capped reply.

This module imports neither pandas nor the rest of ``prrt`` (start-up time), and holds
everything the worker needs: the locked-down DuckDB instance (`sandbox`), the statement checks
(`check_statement`: one read-only statement, no hash or dynamic-SQL function anywhere in its
parse tree) and the output caps (`capped_query`).
"""

from __future__ import annotations

import ctypes
import json
import re
import resource
import signal
import sys
import time

# Hash functions of DuckDB 2.0.1 (``duckdb_functions()``: every function whose name or
# description says hash/digest, and the built-in macros that call one), and every function
# that runs SQL given as a string. None of them may appear anywhere in a console statement:
# with sha256 (plus unhex/encode) an analyst who knows the pseudonym key could rebuild
# patient_key = HMAC-SHA256(key, patient_id) (prrt/pseudonym.py); with query() & co. a check
# of the parse tree could be bypassed. tests/sql_console/test_no_key_rebuild.py checks this
# list against the installed DuckDB.
HASH_FUNCTIONS: frozenset[str] = frozenset({
    "hash", "md5", "md5_number", "md5_number_lower", "md5_number_upper", "sha1", "sha256",
})
DYNAMIC_SQL_FUNCTIONS: frozenset[str] = frozenset({
    "query", "query_table", "json_execute_serialized_sql",
})
DENIED_FUNCTIONS: frozenset[str] = HASH_FUNCTIONS | DYNAMIC_SQL_FUNCTIONS
# Built-in table macros that call query_table() on a string: refused where they are used as a
# table (FROM histogram('t', col)); the aggregate histogram(col) of the same name stays.
DENIED_TABLE_FUNCTIONS: frozenset[str] = frozenset({"histogram", "histogram_values"})

READ_STATEMENTS = {"SELECT", "EXPLAIN"}
STATEMENT_HINTS = {
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
WRITE_HINT = "the warehouse is read-only here"

# The snapshot as DuckDB sees it: through a file system registered under this protocol,
# so that duckdb_databases(), allowed_paths and error messages show this name, never a path
# of the server (DuckDB resolves relative paths and symlinks to the real absolute path).
SNAPSHOT_URL = "console://warehouse.duckdb"

# Column types returned as they are (fixed size); every other type -- VARCHAR, BLOB, BIT,
# ENUM, LIST, STRUCT, MAP, ARRAY, UNION, JSON... -- is cast to VARCHAR and cut.
_FIXED_SIZE_TYPES = {
    "boolean", "tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint",
    "uinteger", "ubigint", "uhugeint", "float", "double", "decimal", "date", "time", "time_ns",
    "timestamp", "timestamp_s", "timestamp_ms", "timestamp_ns", "timestamp with time zone",
    "time with time zone", "interval", "uuid",
}


class Rejected(Exception):
    """A one-line message for the user."""


# --- the instance ---------------------------------------------------------------------------


def sandbox(snapshot_file: str, *, timeout_s: float, memory_limit: str, threads: int):
    """A fresh, locked in-memory DuckDB instance with `snapshot_file` attached read-only."""
    import duckdb

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
            # No setting may name a directory of the server (duckdb_settings() is readable).
            "temp_directory": "",  # nothing spills to disk: an over-large query fails instead
            "home_directory": "",
            "extension_directory": "no-extensions",
            "secret_directory": "no-secrets",
        },
    )
    try:
        con.register_filesystem(_snapshot_filesystem(snapshot_file))
        con.execute(f"ATTACH '{SNAPSHOT_URL}' AS warehouse (READ_ONLY)")
        con.execute("USE warehouse")
        con.execute("SET enable_external_access = false")
        con.execute(f"SET max_execution_time = {max(1, round(timeout_s * 1000))}")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _snapshot_filesystem(snapshot_file: str):
    """An fsspec file system `console://` whose only files are the snapshot (and its WAL names)."""
    import os

    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    directory, name = os.path.split(snapshot_file)
    public = SNAPSHOT_URL.split("://", 1)[1]

    class SnapshotFileSystem(DirFileSystem):
        protocol = "console"

        def _join(self, path):
            if isinstance(path, str):
                path = self._strip_protocol(path).lstrip("/")
                if not path.startswith(public):
                    raise FileNotFoundError(path)
                return f"{self.path}/{name}{path[len(public):]}"
            return [self._join(p) for p in path]

        def _relpath(self, path):
            if isinstance(path, str):
                base = path.rsplit("/", 1)[-1]
                return public + base[len(name):] if base.startswith(name) else base
            return [self._relpath(p) for p in path]

    return SnapshotFileSystem(path=directory, fs=LocalFileSystem())


# --- statement checks ------------------------------------------------------------------------


def check_statement(con, sql: str) -> tuple[str, str]:
    """(kind, sql without its tail) for one read-only statement free of denied functions."""
    import duckdb

    try:
        statements = con.extract_statements(sql or "")
    except duckdb.Error as exc:
        raise Rejected(clean(str(exc))) from None
    if not statements:
        raise Rejected("Enter a query.")
    if len(statements) > 1:
        raise Rejected(f"Run one statement at a time (found {len(statements)}).")
    kind = str(statements[0].type).rsplit(".", 1)[-1]
    if kind not in READ_STATEMENTS:
        hint = STATEMENT_HINTS.get(kind, WRITE_HINT)
        raise Rejected(
            f"Only read-only queries (SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) run in "
            f"the console, not {kind}: {hint}."
        )
    body = without_tail(statements[0].query)
    select = _explained_select(body) if kind == "EXPLAIN" else body
    check_functions(con, select)
    return kind, body


def _explained_select(sql: str) -> str:
    """The SELECT of `EXPLAIN [ANALYZE] <select>`; other EXPLAIN forms are refused."""
    import duckdb

    tokens = duckdb.tokenize(sql)
    words = [sql[o:e].strip().upper() for (o, _), e in zip(tokens, [t[0] for t in tokens[1:]] + [len(sql)])]
    skip = 2 if len(words) > 1 and words[1] in ("ANALYZE", "ANALYSE") else 1
    if words[:1] != ["EXPLAIN"] or len(tokens) <= skip:
        raise Rejected("The console runs EXPLAIN [ANALYZE] followed by a query, nothing else.")
    return sql[tokens[skip][0]:]


def check_functions(con, sql: str) -> None:
    """Refuse `sql` if its parse tree calls a denied function anywhere (lambdas, subqueries,
    CTEs, table functions, any schema). Fail closed: what DuckDB cannot serialise is refused."""
    tree = json.loads(con.execute("SELECT json_serialize_sql($1)", [sql]).fetchall()[0][0])
    if tree.get("error") or not tree.get("statements"):
        raise Rejected("The console runs queries it can check: SELECT, WITH, FROM, DESCRIBE, SHOW, "
                       "SUMMARIZE, PIVOT with an IN list, EXPLAIN.")
    for name, as_table in sorted(_function_calls(tree)):
        if as_table and name in DENIED_TABLE_FUNCTIONS:
            raise Rejected(f"The table function {name}() is not available in the console: it runs a query "
                           "built from a string. Use the aggregate histogram(column) instead.")
        if name in HASH_FUNCTIONS:
            raise Rejected(f"Hash functions such as {name}() are not available in the console "
                           "(they could rebuild patient keys).")
        if name in DENIED_FUNCTIONS:
            raise Rejected(f"{name}() is not available in the console: it runs SQL given as a string. "
                           "Write the query itself.")


def _function_calls(node) -> set[tuple[str, bool]]:
    """(function name, called as a table function) for every call in a serialised parse tree."""
    calls: set[tuple[str, bool]] = set()
    stack = [(node, False)]
    while stack:
        item, as_table = stack.pop()
        if isinstance(item, dict):
            name = item.get("function_name")
            if isinstance(name, str):
                calls.add((name.lower(), as_table))
            table_ref = item.get("type") == "TABLE_FUNCTION"
            for key, value in item.items():
                stack.append((value, table_ref and key == "function"))
        elif isinstance(item, list):
            stack.extend((child, False) for child in item)
    return calls


def without_tail(sql: str) -> str:
    """`sql` without its trailing `;` and comments, so that it can be wrapped."""
    import duckdb

    end = len(sql)
    for offset, kind in reversed(duckdb.tokenize(sql)):
        if kind == duckdb.token_type.comment or (kind == duckdb.token_type.operator and sql[offset] == ";"):
            end = offset
        else:
            break
    return sql[:end].rstrip()


# --- output caps -----------------------------------------------------------------------------


def capped_query(columns: list[str], type_ids: list[str], body: str, *, max_rows: int, max_cell_chars: int) -> str:
    """`body` wrapped so that DuckDB itself cuts every cell and stops after max_rows + 1 rows."""
    parts = []
    for position, (name, type_id) in enumerate(zip(columns, type_ids), start=1):
        ref = f"#{position}"
        if type_id in _FIXED_SIZE_TYPES:
            expr = ref
        else:
            text = ref if type_id == "varchar" else f"CAST({ref} AS VARCHAR)"
            expr = (f"CASE WHEN length({text}) > {max_cell_chars} THEN left({text}, {max_cell_chars}) || "
                    f"' …[cut: ' || (length({text}) - {max_cell_chars}) || ' more characters]' ELSE {text} END")
        parts.append(f"{expr} AS {ident(name)}")
    # The newline keeps a comment inside `body` from swallowing the closing parenthesis.
    return f"SELECT {', '.join(parts)} FROM (\n{body}\n) AS console_query LIMIT {max_rows + 1}"


# --- messages --------------------------------------------------------------------------------


def user_message(exc, timeout_s: float, memory_limit: str, allowed: tuple[str, ...], hidden: tuple[str, ...]) -> str:
    import duckdb

    text = str(exc)
    if isinstance(exc, duckdb.InterruptException) or "Interrupted" in text.split(":", 1)[0]:
        return timeout_message(timeout_s)
    if isinstance(exc, duckdb.OutOfMemoryException) or "std::bad_alloc" in text:
        return memory_message(memory_limit)
    if isinstance(exc, duckdb.PermissionException):
        return ("The console cannot read or write files, attach databases or load extensions: "
                f"it sees the warehouse's {', '.join(allowed)} schemas only.")
    if "configuration has been locked" in text:
        return "Settings are fixed in the console and cannot be changed."
    missing = re.search(r'schema "(?:[^"]*\.)?(\w+)" does not exist', text)
    if missing and missing.group(1) in hidden:
        return (f"Schema {missing.group(1)} is not available in the console"
                + (" (it holds identifying data: patient_id, birth_date)" if missing.group(1) == "ingest" else "")
                + f". The console sees {', '.join(allowed)}.")
    return clean(text)


def timeout_message(timeout_s: float) -> str:
    return (f"The query ran longer than {timeout_s:g} s and was stopped. Narrow it down "
            "(filters, LIMIT, fewer joins) or run it with the duckdb CLI.")


def memory_message(memory_limit: str) -> str:
    return (f"The query needed more than the console's {memory_limit} of memory and was stopped. "
            "Aggregate or filter more, or run it with the duckdb CLI.")


def clean(message: str) -> str:
    """DuckDB's message on one line, without the internal stack trace some errors carry."""
    message = message.split("\n\nStack Trace", 1)[0].strip()
    return " ".join(message.split("\n", 1)[0].split()) if message else "The query failed."


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- the process -----------------------------------------------------------------------------


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    import os

    if os.getppid() != parent:
        os._exit(1)


def _reply(header: dict, payload: bytes = b"") -> None:
    out = sys.stdout.buffer
    out.write(json.dumps(header).encode() + b"\n")
    out.write(payload)
    out.flush()


def serve(request: dict) -> tuple[dict, bytes]:
    import duckdb
    import pyarrow as pa

    timeout_s, memory_limit = request["timeout_s"], request["memory_limit"]
    allowed, hidden = tuple(request["allowed_schemas"]), tuple(request["hidden_schemas"])
    try:
        con = sandbox(request["snapshot"], timeout_s=timeout_s, memory_limit=memory_limit,
                      threads=request["threads"])
    except (duckdb.Error, OSError) as exc:
        return {"ok": False, "message": f"The warehouse could not be opened for the console ({type(exc).__name__})."}, b""
    try:
        kind, body = check_statement(con, request["sql"])
        started = time.perf_counter()
        if kind == "EXPLAIN":  # runs the plan at once: its output is one plan, not the rows
            wrapped = None
        else:
            relation = con.sql(body)  # binds only: names and types, nothing runs yet
            wrapped = capped_query(relation.columns, [t.id for t in relation.types], body,
                                   max_rows=request["max_rows"], max_cell_chars=request["max_cell_chars"])
            check_statement(con, wrapped)  # the wrapper obeys the same rules
        if wrapped is None:
            table = con.sql(body).to_arrow_table()
        else:
            reader = con.sql(wrapped).to_arrow_reader(2048)
            batches, size = [], 0
            for batch in reader:
                size += batch.nbytes
                if size > request["max_result_bytes"]:
                    raise Rejected(f"The result is larger than the console's {request['max_result_bytes'] // 2**20} MB: "
                                   "select fewer columns or rows.")
                batches.append(batch)
            table = pa.Table.from_batches(batches, schema=reader.schema)
        elapsed = time.perf_counter() - started
    except Rejected as rejected:
        return {"ok": False, "message": str(rejected)}, b""
    except duckdb.Error as exc:
        return {"ok": False, "message": user_message(exc, timeout_s, memory_limit, allowed, hidden)}, b""
    except MemoryError:
        return {"ok": False, "message": memory_message(memory_limit)}, b""
    finally:
        con.close()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    payload = sink.getvalue().to_pybytes()
    if len(payload) > request["max_result_bytes"]:
        return {"ok": False, "message": f"The result is larger than the console's "
                                        f"{request['max_result_bytes'] // 2**20} MB: select fewer columns or rows."}, b""
    return {"ok": True, "elapsed_s": elapsed,
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, payload


def main() -> None:
    request = json.loads(sys.stdin.buffer.read(4 * 2**20) or b"{}")
    _die_with_parent(request["parent_pid"])
    limit = request.get("address_space_bytes")
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        header, payload = serve(request)
    except MemoryError:
        header, payload = {"ok": False, "message": memory_message(request["memory_limit"])}, b""
    _reply(header, payload)


if __name__ == "__main__":
    main()
