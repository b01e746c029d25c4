"""No hash or dynamic-SQL function in the console: patient_key = HMAC-SHA256(key, patient_id)
cannot be rebuilt with DuckDB's own functions, and no string can smuggle SQL past the check."""

from __future__ import annotations

import re

import duckdb
import pytest

from prrt import pseudonym, sql_console, sql_console_worker
from prrt.sql_console import QueryRejected, run_query

HASH = "Hash functions such as"
DYNAMIC = "runs SQL given as a string"

REJECTED = {
    "SELECT sha256('x')": HASH,
    "SELECT system.main.sha256('x')": HASH,
    "SELECT main.SHA256('x')": HASH,
    "SELECT \"sha256\"('x')": HASH,
    "SELECT * FROM query('SELECT sha256(''x'')')": DYNAMIC,
    "SELECT list_transform([1], x -> md5(x::VARCHAR))": HASH,
    "SELECT list_transform([1], lambda x: md5(x::VARCHAR))": HASH,
    "SELECT md5_number('x')": HASH,
    "SELECT md5_number_upper('x')": HASH,
    "SELECT sha1('x')": HASH,
    "SELECT hash(patient_key) FROM marts.dim_patient": HASH,
    "SELECT 'x'.sha256()": HASH,
    "WITH k AS (SELECT sha256('x') AS h) SELECT * FROM k": HASH,
    "SELECT * FROM marts.dim_patient WHERE patient_key IN (SELECT sha256('BUMS-244975'))": HASH,
    "SELECT (SELECT max(sha256(patient_key)) FROM marts.dim_patient)": HASH,
    "SELECT count(*) FILTER (WHERE sha256(patient_key) = '') FROM marts.dim_patient": HASH,
    "SELECT row_number() OVER (ORDER BY md5(patient_key)) FROM marts.dim_patient": HASH,
    "SELECT * FROM query_table('marts.dim_patient')": DYNAMIC,
    "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT sha256(''x'')'))": DYNAMIC,
    "EXPLAIN SELECT sha256('x')": HASH,
    "EXPLAIN ANALYZE SELECT sha256('x')": HASH,
    "PIVOT marts.dim_patient ON sex IN ('F', 'M') USING max(sha256(patient_key))": HASH,
    "FROM marts.dim_patient SELECT md5(patient_key)": HASH,
    "FROM histogram('marts.dim_patient', age_at_baseline)": "built from a string",
    "FROM histogram_values('marts.dim_patient', age_at_baseline)": "built from a string",
    "SELECT " + pseudonym.hmac_sql("'BUMS-244975'", pseudonym.DEVELOPMENT_KEY.encode()) + " AS rebuilt": HASH,
}


@pytest.mark.parametrize("sql", list(REJECTED))
def test_hash_and_dynamic_sql_functions_are_rejected(demo_warehouse, sql):
    with pytest.raises(QueryRejected) as rejected:
        run_query(demo_warehouse, sql)
    assert REJECTED[sql] in rejected.value.message
    assert "\n" not in rejected.value.message


ORDINARY = [
    *sql_console.EXAMPLES.values(),
    "PIVOT marts.dim_patient ON sex IN ('F', 'M') USING count(*)",
    "SUMMARIZE marts.dim_patient",
    "DESCRIBE marts.dim_patient",
    "SHOW TABLES",
    "EXPLAIN SELECT count(*) FROM marts.dim_patient",
    "SELECT list_transform([1, 2], lambda x: x * 2) AS doubled",
    "SELECT histogram(sex) AS h FROM marts.dim_patient",
    "SELECT encode('x') AS b, unhex('41') AS u, 'sha256' AS not_a_call, 1 AS md5",
]


@pytest.mark.parametrize("sql", ORDINARY)
def test_ordinary_queries_still_run(demo_warehouse, sql):
    assert len(run_query(demo_warehouse, sql).frame.columns) > 0


def test_statement_the_walker_cannot_serialise_is_rejected(demo_warehouse):
    con = sql_console._sandbox(demo_warehouse, timeout_s=2, memory_limit="500MB", threads=1)
    try:
        with pytest.raises(sql_console_worker.Rejected, match="queries it can check"):
            sql_console_worker.check_functions(con, "EXPLAIN SELECT 1")  # json_serialize_sql: SELECT only
        with pytest.raises(sql_console_worker.Rejected, match="queries it can check"):
            sql_console_worker.check_functions(con, "SELEC 1")
    finally:
        con.close()


def test_denied_list_covers_duckdbs_hash_and_dynamic_sql_functions():
    """The hard-coded list matches the installed DuckDB: every hash-like function, every macro
    that calls a denied function (transitively), every function that runs SQL from a string."""
    with duckdb.connect(":memory:") as con:
        functions = con.execute(
            "SELECT DISTINCT function_name, function_type, coalesce(description, ''), coalesce(macro_definition, '')"
            " FROM duckdb_functions()"
        ).fetchall()
    hash_like = {name for name, _, description, _ in functions
                 if re.search(r"hash|sha\d|md5|crc|digest|hmac|blake|xxh|murmur", name, re.I)
                 or re.search(r"\bhash", description, re.I)}
    assert hash_like <= sql_console_worker.HASH_FUNCTIONS, hash_like - sql_console_worker.HASH_FUNCTIONS
    denied = set(sql_console_worker.DENIED_FUNCTIONS)
    changed = True
    while changed:
        changed = False
        for name, kind, _, definition in functions:
            if "macro" in kind and name not in denied and any(
                    re.search(rf"\b{re.escape(d)}\s*\(", definition, re.I) for d in denied):
                denied.add(name)
                changed = True
    expected = sql_console_worker.DENIED_FUNCTIONS | sql_console_worker.DENIED_TABLE_FUNCTIONS
    assert denied == set(expected), denied ^ expected
    # list_aggregate & co. run an *aggregate* named by a string, reduce a lambda: not SQL, and
    # DuckDB has no hash aggregate (list_aggregate(l, 'sha256') -> "not an aggregate function").
    named_aggregate = {"aggregate", "array_aggr", "array_aggregate", "list_aggr", "list_aggregate",
                       "array_reduce", "list_reduce", "reduce"}
    runs_sql = {name for name, _, description, _ in functions
                if name in ("query", "query_table") or re.search(r"execut", description + name, re.I)}
    assert runs_sql - named_aggregate <= sql_console_worker.DYNAMIC_SQL_FUNCTIONS, runs_sql
    with duckdb.connect(":memory:") as con, pytest.raises(duckdb.Error, match="not an aggregate"):
        con.execute("SELECT list_aggregate(['x'], 'sha256')").fetchall()
