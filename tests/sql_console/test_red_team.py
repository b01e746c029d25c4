"""Red-team findings of "Safe on real patient data": the console holds its limits.

Each query runs through `run_query` in a separate Python process (as the Streamlit server
would call it); `os.wait4` on that process gives its peak resident memory *including* the
worker it started (Linux reports the maximum over the process and its waited-for children),
and the process reports its own peak (the "server" side) separately. Before the fix the
first query took 12 GB and 135 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from prrt import sql_console
from prrt.sql_console import QueryRejected, run_query

GB = 2**30
MB = 2**20
# The worker's address space is capped at memory_limit + headroom: 1 GB + 1 GiB here.
PEAK_BOUND = 1e9 + sql_console.WORKER_HEADROOM_BYTES
CALLER_BOUND = 400 * MB  # the calling ("server") process: interpreter, pandas, pyarrow, the reply
TIME_BOUND_S = 5 + sql_console.WORKER_START_GRACE_S + 10  # timeout_s=5, start-up grace, slack for CI

MEMORY_MESSAGE = "more than the console's 1GB of memory"
TIMEOUT_MESSAGE = "ran longer than 5 s"

# name -> (query, extra run_query arguments, expected: a message fragment or "cut" for capped cells)
RED_TEAM = {
    "100 MB strings x 40": ("SELECT repeat('x', 100000000) AS s FROM range(40)", {}, "cut"),
    "one 2 GB string": ("SELECT repeat('x', 2000000000) AS s", {}, MEMORY_MESSAGE),
    "huge cross join": ("SELECT count(*) FROM range(1000000000000) a, range(1000000000000) b", {},
                        f"{MEMORY_MESSAGE}|{TIMEOUT_MESSAGE}"),
    "cross join, all rows": ("SELECT * FROM range(100000000) a, range(100000000) b", {}, "truncated"),
    "long string_agg": ("SELECT string_agg(repeat('x', 1000), ',') FROM range(10000000)", {}, MEMORY_MESSAGE),
    "huge list": ("SELECT list(range) FROM range(1000000000)", {}, MEMORY_MESSAGE),
    "deep, wide lists": ("SELECT list_transform(range(100000), lambda x: [[[[x]]]]) AS l FROM range(100)", {}, "cut"),
    "blob": ("SELECT repeat('\\xAA'::BLOB, 10000000) AS b FROM range(10)", {}, "cut"),
    "many wide rows over the byte cap": ("SELECT repeat('x', 5000) AS s FROM range(100000)",
                                         {"max_result_bytes": MB}, "larger than the console's 1 MB"),
}

_CALL = """
import json, sys
from prrt import sql_console
sql, kwargs = json.loads(sys.argv[2]), json.loads(sys.argv[3])
outcome = {}
try:
    result = sql_console.run_query(sys.argv[1], sql, timeout_s=5, **kwargs)
    cells = [str(v) for v in result.frame.iloc[:, 0]]
    outcome = {"rows": len(result.frame), "truncated": result.truncated,
               "longest": max(map(len, cells), default=0), "cut": all("…[cut: " in c for c in cells)}
except sql_console.QueryRejected as rejected:
    outcome = {"message": rejected.message}
outcome["worker_peak_kb"] = sql_console.last_query.get("peak_rss_kb")
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child of a large
# pytest process would report pytest's own peak (678 MB in a full run) as its own
with open("/proc/self/status") as status:
    outcome["caller_peak_kb"] = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps(outcome))
"""


def console_call(warehouse, sql: str, **kwargs) -> tuple[dict, int, float]:
    """(outcome, peak RSS bytes of the calling process and its worker, seconds)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen([sys.executable, "-c", _CALL, str(warehouse), json.dumps(sql), json.dumps(kwargs)],
                                 stdout=subprocess.PIPE, stderr=err)
        out = child.stdout.read()  # until EOF; then reap the child ourselves for its rusage
        child.stdout.close()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        err.seek(0)
        assert child.returncode == 0, err.read().decode(errors="replace")
    return json.loads(out), usage.ru_maxrss * 1024, elapsed


@pytest.fixture(scope="module")
def snapshot_ready(demo_warehouse):
    sql_console.snapshot(demo_warehouse)  # built once, not timed per query
    return demo_warehouse


@pytest.mark.parametrize("name", list(RED_TEAM))
def test_red_team_query_holds_the_limits(snapshot_ready, name, record_property):
    sql, kwargs, expected = RED_TEAM[name]
    outcome, peak, elapsed = console_call(snapshot_ready, sql, **kwargs)
    record_property("peak_mb", round(peak / MB))
    record_property("seconds", round(elapsed, 2))
    print(f"\n{name}: peak {peak / MB:.0f} MB (worker {outcome['worker_peak_kb'] / 1024:.0f} MB, caller "
          f"{outcome['caller_peak_kb'] / 1024:.0f} MB), {elapsed:.2f} s: {outcome.get('message') or outcome}")
    assert peak < PEAK_BOUND, f"{peak / MB:.0f} MB"
    assert outcome["caller_peak_kb"] * 1024 < CALLER_BOUND
    assert elapsed < TIME_BOUND_S
    if expected == "cut":
        assert outcome["cut"] and outcome["longest"] <= 1_000 + 60, outcome
    elif expected == "truncated":
        assert outcome["rows"] == 10_000 and outcome["truncated"], outcome
    else:
        message = outcome.get("message")
        assert message and "\n" not in message and "Traceback" not in message, outcome
        assert any(part in message for part in expected.split("|")), message


def test_cells_are_cut_inside_duckdb_with_a_visible_marker(demo_warehouse):
    frame = run_query(demo_warehouse, "SELECT repeat('ab', 600) AS s, [1, 2] AS l, {'a': 1} AS st, "
                                      "'\\x00\\x01'::BLOB AS b, 42 AS n, DATE '2024-01-31' AS d, 1.5 AS x",
                      max_cell_chars=100).frame
    row = frame.iloc[0]
    assert row["s"] == "ab" * 50 + " …[cut: 1100 more characters]"
    assert (row["l"], row["st"], row["b"]) == ("[1, 2]", "{'a': 1}", "\\x00\\x01")  # cast to VARCHAR
    assert row["n"] == 42 and str(row["d"]) == "2024-01-31" and row["x"] == 1.5  # numbers and dates kept
    assert frame.dtypes["n"].kind == "i"


def test_one_query_at_a_time_per_user(demo_warehouse):
    sql_console.snapshot(demo_warehouse)
    slow = "SELECT count(*) FROM range(1000000000000) a, range(10) b WHERE a.range % 7 = b.range"
    outcome: dict = {}

    def alice_first():
        try:
            run_query(demo_warehouse, slow, user="alice", timeout_s=4)
        except QueryRejected as rejected:
            outcome["first"] = rejected.message

    thread = threading.Thread(target=alice_first)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while "alice" not in sql_console._running and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(QueryRejected, match="already have a query running") as second:
            run_query(demo_warehouse, "SELECT 1 AS x", user="alice")
        assert "\n" not in second.value.message
        assert run_query(demo_warehouse, "SELECT 1 AS x", user="bob").frame["x"].tolist() == [1]
    finally:
        thread.join()
    assert "ran longer than 4 s" in outcome["first"]
    assert run_query(demo_warehouse, "SELECT 2 AS x", user="alice").frame["x"].tolist() == [2]


def test_overhead_per_query(demo_warehouse, record_property):
    """Start-up cost of the worker process, measured (reported, loosely bounded)."""
    sql_console.snapshot(demo_warehouse)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        result = run_query(demo_warehouse, "SELECT 42 AS answer")
        times.append(time.perf_counter() - started)
        assert result.frame["answer"].tolist() == [42]
    median = sorted(times)[2]
    record_property("median_s", round(median, 3))
    print(f"\nper-query cost: median {median:.3f} s, worker peak {result.worker_peak_rss_kb / 1024:.0f} MB")
    assert median < 5
