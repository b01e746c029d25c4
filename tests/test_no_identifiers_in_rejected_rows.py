"""Unreadable rows (too many columns, an over-long line, bad encoding) leave only their file,
line, field and reason: the name and birth date they carry are nowhere in the warehouse."""

from __future__ import annotations

import os
import shutil
import subprocess

import duckdb

from .conftest import DEMO_EXPORT, PRRT
from .privacy_scan import find_secrets

NAMES = ("Wilhelmina Toomanycolumns", "Ottilie Overlongline", "Bértrand Badencoding")
BIRTH_DATES = ("1931-07-14", "1933-09-16", "1932-08-15")
FILLER = ",F,gi,,,yes,no,no,no,no,tc99m_octreotide,3,"  # the other 12 columns of patients.csv
SECRETS = {*NAMES, *(n.split()[1] for n in NAMES), *BIRTH_DATES, "14/07/1931", "BAD-1", "BAD-2", "BAD-3"}


def _export_with(tmp_path, rows: list[bytes]):
    raw = tmp_path / "raw"
    shutil.copytree(DEMO_EXPORT, raw)
    patients = raw / "patients.csv"
    assert 3 + FILLER.count(",") == patients.read_text().splitlines()[0].count(",") + 1
    with patients.open("ab") as handle:
        handle.write(b"\n".join(rows) + b"\n")
    return raw


def _refresh(raw, warehouse):
    env = {**os.environ, "PRRT_PSEUDONYM_KEY": "a-secret-test-key"}
    return subprocess.run([PRRT, "refresh", "--raw", str(raw), "--warehouse", str(warehouse)],
                          capture_output=True, text=True, env=env, timeout=900)


def test_unreadable_rows_keep_no_name_or_birth_date(tmp_path):
    raw = _export_with(tmp_path, [
        f"BAD-1,{NAMES[0]},{BIRTH_DATES[0]}{FILLER},one,too many".encode(),
        f"BAD-2,{NAMES[1]} {'y' * 2_100_000},{BIRTH_DATES[1]}{FILLER}".encode(),  # over DuckDB's 2 MB line
    ])
    warehouse = tmp_path / "warehouse.duckdb"
    result = _refresh(raw, warehouse)
    assert result.returncode == 0, result.stdout + result.stderr

    con = duckdb.connect(str(warehouse), read_only=True)
    rejected = con.execute(
        "SELECT source_row, patient_id, field, value, reason FROM audit.rejected_rows"
        " WHERE source_file = 'patients.csv' ORDER BY source_row").fetchall()
    assert [r[0] for r in rejected] == [18, 19]  # the demo's 16 patients are lines 2-17
    assert all(r[1] is None and r[3] is None for r in rejected), rejected
    assert [r[4].split(")")[0] for r in rejected] == [
        "unreadable row (too many columns", "unreadable row (line size over maximum"]
    assert find_secrets(con, SECRETS) == []
    # the scan does find what is there: a demo record number, in the identifying layers only
    assert {f[0] for f in find_secrets(con, {"BUMS-244975"})} == {"ingest", "lineage"}


def test_a_badly_encoded_row_fails_the_file_without_quoting_it(tmp_path):
    raw = _export_with(tmp_path, [f"BAD-3,{NAMES[2]},{BIRTH_DATES[2]}{FILLER}".encode("latin-1")])
    warehouse = tmp_path / "warehouse.duckdb"
    result = _refresh(raw, warehouse)
    assert result.returncode != 0
    assert "patients.csv: line 18: not UTF-8" in result.stderr
    output = result.stdout + result.stderr
    for path in (warehouse.parent / ".builds").glob("*.log"):
        output += path.read_text(errors="replace")
    assert not [s for s in SECRETS if s in output]
    assert not warehouse.exists()
