"""Publishing is atomic: failed or killed refreshes leave the published warehouse as it
was, and readers holding it open neither block a refresh nor see a half-built file."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import duckdb

from prrt import publish

from .conftest import DEMO_EXPORT, PRRT, digest, run_refresh


def patient_count(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT count(*) FROM marts.dim_patient").fetchone()[0]


def test_failing_blocking_check_leaves_previous_warehouse(published, tmp_path):
    # Every patient row is invalid, so marts.dim_patient comes out empty and the blocking
    # "not_empty" check (or a dbt test) fails: nothing may be published.
    bad = tmp_path / "bad_export"
    shutil.copytree(DEMO_EXPORT, bad)
    lines = (bad / "patients.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    sex = header.split(",").index("sex")
    broken = [",".join(v if i != sex else "X" for i, v in enumerate(r.split(","))) for r in rows]
    (bad / "patients.csv").write_text("\n".join([header, *broken]) + "\n")

    before = digest(published)
    result = run_refresh(bad, published)
    assert result.returncode != 0
    assert "FAILED" in result.stderr
    assert "not_empty" in result.stderr or "dbt" in result.stderr
    assert digest(published) == before
    assert patient_count(published) == 16


def test_missing_required_column_fails_with_file_and_column(published, tmp_path):
    bad = tmp_path / "no_sex"
    shutil.copytree(DEMO_EXPORT, bad)
    text = (bad / "patients.csv").read_text().replace(",sex,", ",gender,", 1)
    (bad / "patients.csv").write_text(text)
    before = digest(published)
    result = run_refresh(bad, published)
    assert result.returncode != 0
    assert "patients.csv: line 1: required column 'sex' missing" in result.stderr
    assert "ingest_raw_exports" in result.stderr
    assert digest(published) == before


def test_killed_refresh_leaves_previous_warehouse(published):
    before = digest(published)
    builds = published.parent / ".builds"
    process = subprocess.Popen(
        [PRRT, "refresh", "--raw", str(DEMO_EXPORT), "--warehouse", str(published)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        # kill once the build file exists, i.e. mid-run, after ingestion started
        while not (builds.is_dir() and any(builds.glob("*.duckdb"))):
            assert process.poll() is None, "refresh ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert digest(published) == before
    assert patient_count(published) == 16
    # and the next refresh succeeds over the leftovers
    assert run_refresh(DEMO_EXPORT, published).returncode == 0
    assert patient_count(published) == 16


def test_open_reader_does_not_block_refresh(published, tmp_path):
    # a smaller export, so the reader can tell the two warehouses apart
    small = tmp_path / "small_export"
    shutil.copytree(DEMO_EXPORT, small)
    lines = (small / "patients.csv").read_text().splitlines()
    (small / "patients.csv").write_text("\n".join(lines[:9]) + "\n")  # header + 8 patients

    reader = duckdb.connect(str(published), read_only=True)
    try:
        assert reader.execute("SELECT count(*) FROM marts.dim_patient").fetchone()[0] == 16
        result = run_refresh(small, published)
        assert result.returncode == 0, result.stdout + result.stderr
        # the open reader still sees the warehouse it opened, consistently
        assert reader.execute("SELECT count(*) FROM marts.dim_patient").fetchone()[0] == 16
    finally:
        reader.close()
    assert patient_count(published) == 8
    with duckdb.connect(str(published), read_only=True) as con:
        history = con.execute("SELECT count(*) FROM audit.refresh_history").fetchone()[0]
    assert history >= 2, "refresh history is carried over from the previous warehouse"


def test_each_run_has_its_own_dbt_target_folder_and_old_ones_go(tmp_path):
    from prrt import publish

    warehouse = tmp_path / "warehouse.duckdb"
    first = publish.dbt_target_path(warehouse, "run-a")
    first.mkdir()
    second = publish.dbt_target_path(warehouse, "run-b")
    assert second != first and first.exists()  # an overlapping run's folder is left alone
    stale = time.time() - publish.STALE_BUILD_SECONDS - 60
    os.utime(first, (stale, stale))
    publish.dbt_target_path(warehouse, "run-c")
    assert not first.exists()


def test_a_killed_runs_spill_folder_is_cleaned_up_later(tmp_path):
    from prrt import publish

    warehouse = tmp_path / "warehouse.duckdb"
    spill = publish.build_dir(warehouse) / "warehouse.killed-run.duckdb.tmp"  # DuckDB's temp folder
    spill.mkdir(parents=True)
    (spill / "duckdb_temp_storage-0.tmp").write_bytes(b"x")
    stale = time.time() - publish.STALE_BUILD_SECONDS - 60
    os.utime(spill, (stale, stale))
    publish.start_build(warehouse, "next-run")
    assert not spill.exists()


# --- the early copy an incremental refresh starts from (prrt/publish.py) -------------------
def test_early_copy_becomes_the_build_file(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes(os.urandom(3_000_000))
    publish.start_early_copy(warehouse)
    build = publish.start_build(warehouse, "run-1")
    assert publish.take_early_copy(warehouse, build)
    assert digest(build) == digest(warehouse)
    assert list(publish.build_dir(warehouse).glob("*.early-*")) == []
    assert not publish.take_early_copy(warehouse, build)  # taken once


def test_early_copy_of_a_replaced_warehouse_is_not_taken(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes(b"published at start")
    publish.start_early_copy(warehouse)
    newer = tmp_path / "newer.duckdb"
    newer.write_bytes(b"published meanwhile")
    os.replace(newer, warehouse)
    build = publish.start_build(warehouse, "run-2")
    assert not publish.take_early_copy(warehouse, build)
    assert not build.exists() and list(publish.build_dir(warehouse).glob("*.early-*")) == []


def test_an_early_copy_nobody_takes_is_removed(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes(b"x" * 1000)
    publish.start_early_copy(warehouse)
    publish.discard_early_copy(warehouse)
    assert list(publish.build_dir(warehouse).glob("*.early-*")) == []
    publish.discard_early_copy(warehouse)  # nothing to do
