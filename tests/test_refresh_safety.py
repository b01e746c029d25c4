"""One refresh of a warehouse at a time, nothing of a failed or killed one left behind, and
private files (prrt/refresh_lock.py, prrt/file_modes.py): real `prrt refresh` processes."""

from __future__ import annotations

import grp
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from prrt import file_modes, publish, refresh_lock

from .conftest import DEMO_EXPORT, PRRT, REPO, run_refresh
from .test_atomic_publish import patient_count

BUSY = re.compile(r"prrt refresh: another refresh of (\S+) is running \(pid (\d+), started \d\d:\d\d\);"
                  r" nothing was done")


def start_refresh(raw: Path, warehouse: Path, **env) -> subprocess.Popen:
    """`prrt refresh` in its own process, as conftest.run_refresh, without waiting for it."""
    environ = {**os.environ, **env}
    environ.pop("PRRT_PSEUDONYM_KEY", None)
    return subprocess.Popen(
        [PRRT, "refresh", "--raw", str(raw), "--warehouse", str(warehouse)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
        start_new_session=True,  # for the clean-up in `stop`; tests signal the refresh's pid alone
    )


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()


def build_files(warehouse: Path) -> list[str]:
    """What in .builds/ holds (or held) warehouse data: build files, early copies, WAL, spill folders."""
    directory = publish.build_dir(warehouse)
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir()
                  if re.search(r"\.duckdb(\.wal|\.tmp)?$", p.name))


def wait_for_build(process: subprocess.Popen, warehouse: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not any(name.endswith(".duckdb") and ".early-" not in name for name in build_files(warehouse)):
        assert process.poll() is None, "refresh ended before it could be stopped:\n" + process.communicate()[1]
        assert time.monotonic() < deadline, "no build file appeared"
        time.sleep(0.05)


def mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


def broken_export(tmp_path: Path) -> Path:
    """raw/demo with a required column missing from patients.csv: the ingestion step fails."""
    bad = tmp_path / "no_sex"
    shutil.copytree(DEMO_EXPORT, bad)
    text = (bad / "patients.csv").read_text().replace(",sex,", ",gender,", 1)
    (bad / "patients.csv").write_text(text)
    return bad


def test_two_refreshes_at_once_one_publishes_the_other_stops(tmp_path):
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    processes = [start_refresh(DEMO_EXPORT, warehouse) for _ in range(2)]
    try:
        outputs = [p.communicate(timeout=600) for p in processes]
    finally:
        for process in processes:
            stop(process)
    codes = [p.returncode for p in processes]
    assert sorted(codes) == [0, refresh_lock.EXIT_BUSY], outputs
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    message = outputs[loser][1].strip()
    match = BUSY.fullmatch(message)
    assert match, message  # one line, naming the running refresh
    assert match.group(1) == str(warehouse.resolve()) and int(match.group(2)) == processes[winner].pid
    assert "published" in outputs[winner][0]
    assert patient_count(warehouse) == 16
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM audit.refresh_history").fetchone()[0] == 1

    # private files: the default policy
    builds = publish.build_dir(warehouse)
    assert mode(warehouse) == 0o600
    assert mode(builds) == 0o700
    logs = sorted(p for p in builds.glob("*.log") if not p.is_symlink())
    assert [p.name for p in logs] == [os.readlink(builds / "last-refresh.log")]  # the winner's own log alone
    assert mode(logs[0]) == 0o600 and "dbt" in logs[0].read_text()
    assert mode(refresh_lock.lock_path(warehouse)) == 0o600
    for path in builds.rglob("*"):  # dbt's target and parse cache too: nothing others can read
        if not path.is_symlink():
            assert mode(path) & 0o007 == 0, path
    assert build_files(warehouse) == []
    assert refresh_lock.running(warehouse) is None  # released at exit


def test_a_refresh_that_has_just_taken_the_lock_is_named(tmp_path):
    """The holder takes the lock, then writes its record: a second refresh arriving in between
    waits for the record rather than saying "pid ?" (the race CI once hit)."""
    import fcntl
    import json
    import threading

    warehouse = tmp_path / "warehouse.duckdb"
    publish.make_build_dir(warehouse)
    path = refresh_lock.lock_path(warehouse.resolve())
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held, record not written yet
    record = {"pid": 4242, "started": time.time()}
    writer = threading.Timer(0.3, lambda: os.pwrite(fd, json.dumps(record).encode(), 0))
    writer.start()
    try:
        with pytest.raises(refresh_lock.RefreshRunning) as busy:
            refresh_lock.acquire(warehouse)
    finally:
        writer.join()
        os.close(fd)
    assert busy.value.owner["pid"] == 4242
    assert re.search(r"\(pid 4242, started \d\d:\d\d\)", str(busy.value))


def test_failed_refresh_leaves_no_build_file(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    result = run_refresh(broken_export(tmp_path), warehouse)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "required column 'sex' missing" in result.stderr
    assert build_files(warehouse) == []
    assert not warehouse.exists()
    log = publish.build_dir(warehouse) / "last-refresh.log"
    assert mode(log) == 0o600 and f"full log: {log.resolve()}" in result.stderr


# 1 s after the build file appears is early in dbt's build, where dagster-dbt's output loop
# swallows the interrupt (prrt/stop_signal.py); 4 s is later in it, where Dagster raises it.
@pytest.mark.parametrize("delay", [1.0, 4.0])
def test_sigterm_mid_run_removes_the_build_file(tmp_path, delay):
    warehouse = tmp_path / "warehouse.duckdb"
    refresh = start_refresh(DEMO_EXPORT, warehouse)
    try:
        wait_for_build(refresh, warehouse)
        time.sleep(delay)
        os.kill(refresh.pid, signal.SIGTERM)  # a scheduler's timeout: the refresh's own pid
        output = refresh.communicate(timeout=120)
    finally:
        stop(refresh)
    assert refresh.returncode == 128 + signal.SIGTERM, output
    assert output[1].rstrip().rsplit("\n", 1)[-1] == (
        "prrt refresh: FAILED: SIGTERM: the refresh was asked to stop (SIGTERM or Ctrl-C); nothing was published: "
        "run `prrt refresh` again"), output
    assert build_files(warehouse) == [], output
    assert not warehouse.exists()
    assert refresh_lock.running(warehouse) is None


def test_the_next_refresh_removes_a_sigkilled_runs_build(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    killed = start_refresh(DEMO_EXPORT, warehouse)
    try:
        wait_for_build(killed, warehouse)
        time.sleep(0.5)
    finally:
        stop(killed)  # SIGKILL: nothing of it runs, its build file stays
    leftovers = build_files(warehouse)
    assert leftovers, "the SIGKILLed refresh left its build file"
    # the lock died with it: the next refresh (here one that fails at once) starts, and first
    # of all removes what the killed one left
    result = run_refresh(broken_export(tmp_path), warehouse)
    assert result.returncode == 1, result.stdout + result.stderr
    assert build_files(warehouse) == []


def _hold_lock(warehouse: Path) -> subprocess.Popen:
    """Another process holding the warehouse's refresh lock, as a running refresh does."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from prrt import refresh_lock;"
         f" refresh_lock.acquire(Path({str(warehouse)!r})); print('held', flush=True); time.sleep(120)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_schedule_sensor_and_daemon_runs_respect_a_running_refresh(tmp_path, monkeypatch):
    from dagster_project.resources import WarehouseResource
    from dagster_project.schedules import nightly_refresh
    from dagster_project.sensors import new_export_sensor

    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("PRRT_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("PRRT_RAW_DIR", str(DEMO_EXPORT))
    resource = WarehouseResource(raw_dir=str(DEMO_EXPORT), warehouse=str(warehouse))
    holder = _hold_lock(warehouse)
    # a build file: the running refresh's now; a SIGKILLed run's leftover once the holder is gone
    leftover = publish.build_path(warehouse, "3f1e0c4e-0000-4000-8000-000000000000")
    leftover.write_bytes(b"patient data")
    try:
        assert refresh_lock.running(warehouse)["pid"] == holder.pid
        skip = nightly_refresh(dg.build_schedule_context())
        assert isinstance(skip, dg.SkipReason) and f"(pid {holder.pid}, started" in skip.skip_message
        context = dg.build_sensor_context(cursor=None)
        skip = new_export_sensor(context)
        assert isinstance(skip, dg.SkipReason) and "another refresh" in skip.skip_message
        assert context.cursor is None  # asked again next tick
        with pytest.raises(dg.DagsterResourceFunctionError) as failed:  # a run the daemon launched fails
            with dg.build_resources({"warehouse": resource}):
                pass
        assert isinstance(failed.value.__cause__, refresh_lock.RefreshRunning)
        assert f"another refresh of {warehouse} is running (pid {holder.pid}" in str(failed.value.__cause__)
        assert leftover.exists()  # a live refresh's builds are not touched
    finally:
        holder.kill()
        holder.wait()

    assert isinstance(nightly_refresh(dg.build_schedule_context()), dg.RunRequest)
    assert isinstance(new_export_sensor(dg.build_sensor_context(cursor=None)), dg.RunRequest)
    with dg.build_resources({"warehouse": resource}):
        assert refresh_lock.holds(warehouse)
        assert not leftover.exists()
    assert not refresh_lock.holds(warehouse) and refresh_lock.running(warehouse) is None


def test_file_group_policy(tmp_path, monkeypatch):
    """PRRT_FILE_GROUP: the published file 0640 and group-owned (a new warehouse folder 2750);
    everything under .builds/ stays the refreshing account's alone."""
    group = grp.getgrgid(os.getgid()).gr_name  # a group this account may give its files
    monkeypatch.setenv(file_modes.FILE_GROUP_ENV, group)
    warehouse = tmp_path / "new-folder" / "warehouse.duckdb"
    builds = publish.make_build_dir(warehouse)
    assert os.stat(warehouse.parent).st_mode & 0o7777 == 0o2750
    assert mode(builds) == 0o700
    build = publish.start_build(warehouse, "run-1")
    old = os.umask(0o022)
    try:
        with duckdb.connect(str(build)) as con:  # as DuckDB makes it, then as publication leaves it
            con.execute("CREATE TABLE t AS SELECT 1 AS x")
        publish.publish(build, warehouse)
    finally:
        os.umask(old)
    info = os.stat(warehouse)
    assert info.st_mode & 0o777 == 0o640 and info.st_gid == os.getgid()
    assert mode(refresh_lock.new_run_log(warehouse)) == 0o600

    monkeypatch.setenv(file_modes.FILE_GROUP_ENV, "no-such-group-prrt")
    with pytest.raises(file_modes.FileGroupError, match="no such group"):
        file_modes.policy()
    monkeypatch.delenv(file_modes.FILE_GROUP_ENV)
    assert file_modes.policy().file_mode == 0o600


def test_default_policy_early_copy_and_publish(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    os.chmod(warehouse, 0o644)  # as older refreshes published it
    publish.start_early_copy(warehouse)
    build = publish.start_build(warehouse, "run-1")
    assert publish.take_early_copy(warehouse, build)
    assert mode(build) == 0o600
    publish.publish(build, warehouse)
    assert mode(warehouse) == 0o600
