"""Ingestion of a messy export: tolerated variations accepted and converted, every bad
row rejected with its line, field and reason, and read = accepted + rejected."""

from __future__ import annotations

import duckdb
import pytest

from prrt.ingest import EXPORT_FILES, load_export
from prrt.pseudonym import patient_key

from .messy_export import EXPECTED_REJECTIONS, FILES, write_messy_export

KEY = b"test-key"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    raw = write_messy_export(tmp_path_factory.mktemp("messy"))
    con = duckdb.connect()
    summaries = load_export(con, raw, KEY)
    yield con, summaries
    con.close()


def test_every_bad_row_rejected_with_line_field_and_reason(loaded):
    con, _ = loaded
    rejected = con.execute("SELECT source_file, source_row, field, reason FROM audit.rejected_rows").fetchall()
    by_line = {}
    for source_file, line, field, reason in rejected:
        by_line.setdefault((source_file, line), []).append((field, reason))
    assert set(by_line) == set(EXPECTED_REJECTIONS)
    for where, (field, words) in EXPECTED_REJECTIONS.items():
        assert any(f == field and words in r for f, r in by_line[where]), (where, by_line[where])


def test_read_equals_accepted_plus_rejected_per_file(loaded):
    con, summaries = loaded
    assert {s.source_file for s in summaries} == {spec.filename for spec in EXPORT_FILES}
    for s in summaries:
        data_lines = len(FILES[s.source_file]) - 1
        bad = sum(1 for (f, _line) in EXPECTED_REJECTIONS if f == s.source_file)
        assert (s.rows_read, s.rows_accepted, s.rows_rejected) == (data_lines, data_lines - bad, bad), s
    rows = con.execute("SELECT source_file, rows_read, rows_accepted, rows_rejected FROM audit.load_summary").fetchall()
    assert {r[0]: r[1:] for r in rows} == {s.source_file: (s.rows_read, s.rows_accepted, s.rows_rejected) for s in summaries}


def test_good_rows_converted_to_canonical_units(loaded):
    con, _ = loaded
    cycles = con.execute(
        "SELECT patient_id, cycle_number, administration_date::VARCHAR, activity_gbq FROM ingest.cycles ORDER BY 1, 2"
    ).fetchall()
    assert [(p, n, d) for p, n, d, _ in cycles] == [
        ("H-001", 1, "2019-01-10"), ("H-001", 2, "2019-03-01"), ("H-002", 1, "2019-02-01"),
    ]
    assert [a for *_, a in cycles] == pytest.approx([7.4, 5.55, 7.4])

    labs = {
        (row[0], row[1]): row[2:]
        for row in con.execute(
            "SELECT source_row, analyte, value, unit, lln, uln FROM ingest.labs ORDER BY source_row"
        ).fetchall()
    }
    value, unit, lln, uln = labs[(2, "hemoglobin")]
    assert (unit, value, lln, uln) == ("g/dL", pytest.approx(12.5), pytest.approx(12.0), pytest.approx(16.0))
    value, unit, lln, uln = labs[(3, "creatinine")]
    assert (unit, value, lln, uln) == ("umol/L", pytest.approx(1.1 * 88.42), pytest.approx(0.5 * 88.42), pytest.approx(1.1 * 88.42))
    value, unit, lln, uln = labs[(4, "wbc")]
    assert (unit, value, lln, uln) == ("10^9/L", pytest.approx(5.4), pytest.approx(4.0), pytest.approx(11.0))
    value, unit, lln, uln = labs[(9, "hemoglobin")]
    assert (unit, value, lln, uln) == ("g/dL", pytest.approx(8.2 * 1.6114), None, None)


def test_dates_booleans_enums_and_decimal_commas_parsed(loaded):
    con, _ = loaded
    rows = con.execute(
        "SELECT patient_id, birth_date::VARCHAR, sex, primary_site, diabetes, krenning_score, ki67_percent"
        " FROM ingest.patients ORDER BY patient_id"
    ).fetchall()
    assert rows == [
        ("H-001", "1960-03-15", "F", "pancreas", True, 3, 2.5),
        ("H-002", "1958-07-01", "M", "gi", False, None, None),
    ]
    sites = con.execute("SELECT site FROM ingest.metastases ORDER BY site").fetchall()
    assert sites == [("liver",), ("lymph_node",)]
    assessment = con.execute(
        "SELECT modality, recist_response, sum_of_diameters_mm FROM ingest.tumour_assessments"
    ).fetchall()
    assert assessment == [("ct", "PR", 40.5)]


def test_names_never_stored_and_patient_key_is_hmac(loaded):
    con, _ = loaded
    columns = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'ingest'"
    ).fetchall()}
    assert "full_name" not in columns
    keys = dict(con.execute("SELECT patient_id, patient_key FROM ingest.patients").fetchall())
    assert keys == {pid: patient_key(pid, KEY) for pid in ("H-001", "H-002")}


def test_later_files_append_and_are_checked_against_earlier_ones(tmp_path):
    raw = write_messy_export(tmp_path / "export")
    # a new day's files beside the base export
    (raw / "labs_2019-03-01.csv").write_text(
        "patient_id,sample_date,analyte,value,unit,lln,uln\n"
        "H-001,2019-03-01,hemoglobin,11.9,g/dL,,\n"      # line 2 new result
        "H-001,2019-01-05,wbc,5.4,10^9/L,4,11\n"         # line 3 same result as labs.csv line 4 (sent in /mm3)
    )
    (raw / "cycles_2019-04-20.csv").write_text(
        "patient_id,cycle_number,administration_date,activity,activity_unit\n"
        "H-001,2,2019-04-20,7.4,GBq\n"                 # line 2: cycle 2 already given in cycles.csv
        "H-001,3,2019-04-20,7.4,GBq\n"                 # line 3 new cycle
    )
    (raw / "follow_up_2020-06-01.csv").write_text(
        "patient_id,last_contact_date,vital_status,death_date\nH-001,2020-06-01,dead,2020-06-01\n"
    )
    con = duckdb.connect()
    summaries = {s.source_file: s for s in load_export(con, raw, KEY, run_id="r1")}
    assert (summaries["labs_2019-03-01.csv"].rows_accepted, summaries["labs_2019-03-01.csv"].rows_rejected) == (1, 1)
    assert (summaries["cycles_2019-04-20.csv"].rows_accepted, summaries["cycles_2019-04-20.csv"].rows_rejected) == (1, 1)
    assert summaries["follow_up_2020-06-01.csv"].rows_accepted == 1  # an update, not a conflict
    reasons = dict(((f, line), r) for f, line, r in con.execute(
        "SELECT source_file, source_row, reason FROM audit.rejected_rows WHERE source_file LIKE '%\\_2%' ESCAPE '\\'"
    ).fetchall())
    assert reasons == {
        ("labs_2019-03-01.csv", 3): "exact duplicate of labs.csv line 4",
        ("cycles_2019-04-20.csv", 2): "conflicting row for the same patient_id, cycle_number as cycles.csv line 3",
    }
    record_ids = [r[0] for r in con.execute("SELECT record_id FROM ingest.labs").fetchall()]
    assert len(record_ids) == len(set(record_ids))
    files = con.execute("SELECT source_file, entity FROM audit.ingested_files ORDER BY file_id").fetchall()
    assert files[0] == ("patients.csv", "patients") and ("labs_2019-03-01.csv", "labs") in files
    # loading only a later file appends to what is there
    con2 = duckdb.connect()
    load_export(con2, raw, KEY, only={"patients.csv", "labs.csv"})
    before = con2.execute("SELECT count(*) FROM ingest.labs").fetchone()[0]
    load_export(con2, raw, KEY, only={"labs_2019-03-01.csv"})
    assert con2.execute("SELECT count(*) FROM ingest.labs").fetchone()[0] == before + 1


def test_absurd_numbers_are_rejected_rows_not_a_failed_load(tmp_path):
    raw = write_messy_export(tmp_path / "export")
    (raw / "labs_2019-03-02.csv").write_text(
        "patient_id,sample_date,analyte,value,unit,lln,uln\n"
        "H-001,2019-03-02,hemoglobin,inf,g/dL,,\n"        # line 2
        "H-001,2019-03-02,wbc,nan,10^9/L,,\n"             # line 3
        "H-001,2019-03-02,platelets,210,10^9/L,-inf,\n"   # line 4
        "H-001,2019-03-02,creatinine,0.9,mg/dL,,\n"        # line 5 fine
    )
    (raw / "cycles_2019-05-01.csv").write_text(
        "patient_id,cycle_number,administration_date,activity,activity_unit\n"
        "H-001,1e20,2019-05-01,7.4,GBq\n"                  # line 2: a whole number no INTEGER holds
    )
    con = duckdb.connect()
    summaries = {s.source_file: s for s in load_export(con, raw, KEY, run_id="r1")}
    assert (summaries["labs_2019-03-02.csv"].rows_accepted, summaries["labs_2019-03-02.csv"].rows_rejected) == (1, 3)
    assert summaries["cycles_2019-05-01.csv"].rows_rejected == 1
    rejected = set(con.execute(
        "SELECT source_file, source_row, field, reason FROM audit.rejected_rows"
        " WHERE source_file IN ('labs_2019-03-02.csv', 'cycles_2019-05-01.csv')").fetchall())
    assert ("labs_2019-03-02.csv", 2, "value", "not a finite number") in rejected
    assert ("labs_2019-03-02.csv", 3, "value", "not a finite number") in rejected
    assert ("labs_2019-03-02.csv", 4, "lln", "not a finite number") in rejected
    assert ("cycles_2019-05-01.csv", 2, "cycle_number", "whole number out of range") in rejected
