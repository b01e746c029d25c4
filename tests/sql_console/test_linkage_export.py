"""With a secret key and an export built for linkage (rejected rows next to accepted ones, in
every file that feeds a mart), no SQL an analyst can run returns a record number, a name or a
birth date: neither from the snapshot's data nor by joining lineage to the audit tables."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess

import duckdb
import pytest

from prrt import sql_console
from prrt.sql_console import QueryRejected, run_query
from tests.conftest import DEMO_EXPORT, PRRT
from tests.privacy_scan import find_secrets


@pytest.fixture(scope="module")
def linkage(tmp_path_factory):
    """(warehouse, secrets): the demo export with real-looking names, and a rejected row just
    before and after accepted rows of each patient's labs and tumour assessments."""
    root = tmp_path_factory.mktemp("linkage")
    raw = root / "raw"
    shutil.copytree(DEMO_EXPORT, raw)
    with (raw / "patients.csv").open() as handle:
        patients = list(csv.DictReader(handle))
    for i, row in enumerate(patients):
        row["full_name"] = f"Margarethe Linkfield-{chr(65 + i)}"
    with (raw / "patients.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(patients[0]))
        writer.writeheader()
        writer.writerows(patients)
        # a rejected patient row (bad sex) carrying a name and a birth date of its own
        writer.writerow({**patients[0], "patient_id": "BUMS-999999", "full_name": "Rejected Person",
                         "birth_date": "1941-02-03", "sex": "X"})
    for name, bad in (("labs.csv", "{pid},2019-01-01,hemoglobin,12,furlongs,,"),
                      ("tumour_assessments.csv", "{pid},2019-01-01,xray,PR,30")):
        lines = (raw / name).read_text().splitlines()
        out = [lines[0]]
        for line in lines[1:]:  # every accepted row is framed by two rejected rows of its patient
            pid = line.split(",")[0]
            out += [bad.format(pid=pid), line, bad.format(pid=pid)]
        (raw / name).write_text("\n".join(out) + "\n")
    warehouse = root / "warehouse.duckdb"
    env = {**os.environ, "PRRT_PSEUDONYM_KEY": "linkage-test-secret-key-4e1f"}
    result = subprocess.run([PRRT, "refresh", "--raw", str(raw), "--warehouse", str(warehouse)],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    ids = {r["patient_id"] for r in patients} | {"BUMS-999999"}
    names = {r["full_name"] for r in patients} | {"Rejected Person"}
    births = {r["birth_date"] for r in patients} | {"1941-02-03"}
    births |= {f"{b[8:10]}/{b[5:7]}/{b[:4]}" for b in births}
    return warehouse, ids | names | births


def test_the_export_really_links_in_the_warehouse(linkage):
    """The identifying layers do hold what the analysts' copy must not (the test is not vacuous)."""
    warehouse, secrets = linkage
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rejected = con.execute("SELECT count(*) FROM audit.rejected_rows WHERE patient_id IS NOT NULL").fetchone()[0]
        assert rejected >= 2 * (997 + 96)
        assert {f[0] for f in find_secrets(con, secrets)} >= {"ingest", "lineage", "audit"}


def test_nothing_identifying_anywhere_in_the_analysts_snapshot(linkage):
    warehouse, secrets = linkage
    with duckdb.connect(str(sql_console.snapshot(warehouse)), read_only=True) as con:
        assert find_secrets(con, secrets) == []
        schemas = {r[0] for r in con.execute("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()}
    assert schemas == set(sql_console.ALLOWED_SCHEMAS)


LINKAGE_QUERIES = [
    # the red team's join: a rejected row's patient_id beside an accepted row's patient_key
    "SELECT r.patient_id, l.patient_key FROM audit.rejected_rows r JOIN marts.fct_lab_result l"
    " ON l.source_file = r.source_file AND abs(l.source_row - r.source_row) = 1",
    "SELECT r.patient_id, t.patient_key FROM audit.rejected_rows r JOIN marts.fct_tumour_assessment t"
    " ON t.source_file = r.source_file AND abs(t.source_row - r.source_row) = 1",
    "SELECT l.record_id, l.patient_key FROM marts.fct_lab_result l",
    "SELECT * FROM lineage.record_sources",
    "SELECT * FROM ingest.patients",
    "SELECT * FROM query('SELECT * FROM ingest.patients')",
]


@pytest.mark.parametrize("sql", LINKAGE_QUERIES)
def test_linkage_queries_are_refused(linkage, sql):
    warehouse, _ = linkage
    with pytest.raises(QueryRejected):
        run_query(warehouse, sql)


def test_what_analysts_can_read_of_the_audit_tables_holds_no_identifier(linkage):
    warehouse, secrets = linkage
    for table in ("rejected_rows", "load_summary", "ingested_files", "refresh_history", "similar_patient_ids"):
        frame = run_query(warehouse, f"SELECT * FROM audit.{table}").frame
        cells = {str(v) for v in frame.to_numpy().ravel()}
        assert not [s for s in secrets if any(s in c for c in cells)], table
    reasons = run_query(warehouse, "SELECT DISTINCT field, reason FROM audit.rejected_rows ORDER BY ALL").frame
    assert set(reasons["field"]) == {"unit", "modality", "sex", "(whole row)"}  # framing rows repeat: duplicates
