"""Unreadable rows (too many columns, bad encoding, an over-long line) leave only their file,
line, field and reason: the name and birth date they carry are nowhere in the warehouse."""

from __future__ import annotations

import os
import shutil
import subprocess

import duckdb

from .conftest import DEMO_EXPORT, PRRT
from .privacy_scan import find_secrets

NAMES = ("Wilhelmina Toomanycolumns", "Bértrand Badencoding", "Ottilie Overlongline")
BIRTH_DATES = ("1931-07-14", "1932-08-15", "1933-09-16")


def test_unreadable_rows_keep_no_name_or_birth_date(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(DEMO_EXPORT, raw)
    patients = raw / "patients.csv"
    header = patients.read_text().splitlines()[0]
    width = header.count(",") + 1
    filler = ",F,gi,,,yes,no,no,no,no,tc99m_octreotide,3,"  # the other 12 columns
    assert (3 + filler.count(",")) == width
    rows = [
        f"BAD-1,{NAMES[0]},{BIRTH_DATES[0]}{filler},one,too many".encode(),
        f"BAD-2,{NAMES[1]},{BIRTH_DATES[1]}{filler}".encode("latin-1"),  # é as one latin-1 byte
        f"BAD-3,{NAMES[2]} {'y' * 2_100_000},{BIRTH_DATES[2]}{filler}".encode(),  # over DuckDB's 2 MB line
    ]
    with patients.open("ab") as handle:
        handle.write(b"\n".join(rows) + b"\n")

    warehouse = tmp_path / "warehouse.duckdb"
    env = {**os.environ, "PRRT_PSEUDONYM_KEY": "a-secret-test-key"}
    result = subprocess.run([PRRT, "refresh", "--raw", str(raw), "--warehouse", str(warehouse)],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr

    con = duckdb.connect(str(warehouse), read_only=True)
    rejected = con.execute(
        "SELECT source_row, patient_id, field, value, reason FROM audit.rejected_rows"
        " WHERE source_file = 'patients.csv' ORDER BY source_row").fetchall()
    lines = [18, 19, 20]  # the demo's 16 patients are lines 2-17
    assert [r[0] for r in rejected] == lines
    assert all(r[1] is None and r[3] is None and r[4].startswith("unreadable row") for r in rejected), rejected
    assert [r[4].split(")")[0] for r in rejected] == [
        "unreadable row (too many columns", "unreadable row (invalid encoding", "unreadable row (line size over maximum"]
    secrets = {*NAMES, *(n.split()[1] for n in NAMES), "Badencoding", *BIRTH_DATES, "BAD-1", "BAD-2", "BAD-3"}
    assert find_secrets(con, secrets) == []
    # the scan does find what is there: a demo record number, in the identifying layers only
    assert {f[0] for f in find_secrets(con, {"BUMS-244975"})} == {"ingest", "lineage"}
