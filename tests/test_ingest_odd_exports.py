"""Odd exports as hospital systems write them: each is read as the file meant it, or rejected
with its line, field and a reason saying what to fix (raw/README.md, "Odd exports")."""

from __future__ import annotations

import duckdb
import pytest

from prrt.ingest import ExportFileError, load_export

from .messy_export import BOM, FILES

KEY = b"test-key"


def write_export(directory, changes: dict[str, list[str]], *, comma: bool = False):
    """The messy export (semicolons, decimal commas) with files replaced by ``changes``;
    ``comma``: every file rewritten comma-separated with decimal points."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, lines in {**FILES, **changes}.items():
        if comma and name not in changes:
            lines = [line.replace(",", ".").replace(";", ",") for line in lines]
        (directory / name).write_bytes((BOM + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    return directory


def load(directory):
    con = duckdb.connect()
    summaries = {s.source_file: s for s in load_export(con, directory, KEY)}
    return con, summaries


def rejections(con, source_file: str) -> dict[int, list[tuple[str, str, str]]]:
    rows = con.execute("SELECT source_row, field, value, reason FROM audit.rejected_rows WHERE source_file = ?"
                       " ORDER BY ALL", [source_file]).fetchall()
    out: dict[int, list] = {}
    for line, field, value, reason in rows:
        out.setdefault(line, []).append((field, value, reason))
    return out


def test_two_digit_years_and_dates_before_1900_are_rejected_not_guessed(tmp_path):
    labs = FILES["labs.csv"][:2] + [
        "H-001;18/01/19;hemoglobin;12,5;g/dL;;",      # line 3: 2019? 1919? -> never guessed
        "H-001;19-01-18;hemoglobin;12,5;g/dL;;",      # line 4: ISO with a two-digit year
        "H-001;31/12/1899;hemoglobin;12,5;g/dL;;",    # line 5: before 1900
    ]
    patients = FILES["patients.csv"][:2] + [
        "H-002;Bob Example;27/06/64;M;gi;ga68_dotatate_pet;;no;",  # line 3: 1964 written as 64
    ]
    con, summaries = load(write_export(tmp_path, {"labs.csv": labs, "patients.csv": patients}))
    four_digits = "four-digit year required (YYYY-MM-DD or DD/MM/YYYY): a two-digit year is not guessed"
    assert rejections(con, "patients.csv") == {3: [("birth_date", "27/06/64", four_digits)]}
    assert rejections(con, "labs.csv") == {
        3: [("sample_date", "18/01/19", four_digits)],  # only this reason: not also "date before birth"
        4: [("sample_date", "19-01-18", four_digits)],
        5: [("sample_date", "31/12/1899", "date before 1900")],
    }
    assert summaries["labs.csv"].rows_accepted == 1
    # no year 0064 or 0019 was stored anywhere
    assert con.execute("SELECT count(*) FROM ingest.patients WHERE year(birth_date) < 1900").fetchone()[0] == 0


def test_digit_separators_and_ambiguous_thousands_are_rejected(tmp_path):
    labs = FILES["labs.csv"][:2] + [
        "H-001;06/01/2019;hemoglobin;1_3;g/dL;;",        # line 3: DuckDB alone reads 13
        "H-001;07/01/2019;platelets;1.234;10^9/L;;",     # line 4: 1234 or 1.234 in a decimal-comma file?
        "H-001;08/01/2019;hemoglobin;12.5;g/dL;;",       # line 5: a decimal point, unambiguous
        "H-001;09/01/2019;hemoglobin;-1.250,5;g/dL;;",   # line 6: a thousands separator and a comma
    ]
    cycles = FILES["cycles.csv"][:2] + ["H-001;1_0;01/03/2019;7,4;GBq"]  # line 3: cycle "10"?
    con, _ = load(write_export(tmp_path, {"labs.csv": labs, "cycles.csv": cycles}))
    got = rejections(con, "labs.csv")
    assert got[3] == [("value", "1_3", "not a number")]
    assert got[4] == [("value", "1.234", "ambiguous number in a decimal-comma file: '.' may group thousands "
                                         "(write 1234, or 1,234 for a decimal)")]
    assert got[6] == [("value", "-1.250,5", "not a number")]
    assert set(got) == {3, 4, 6}
    assert con.execute("SELECT value FROM ingest.labs WHERE sample_date = DATE '2019-01-08'").fetchall() == [(12.5,)]
    assert rejections(con, "cycles.csv") == {3: [("cycle_number", "1_0", "not a number")]}


def test_comma_file_reads_thousands_looking_decimals_as_decimals(tmp_path):
    labs = ["patient_id,sample_date,analyte,value,unit,lln,uln",
            "H-001,2019-01-05,creatinine,1.234,mg/dL,,"]  # a decimal point file: 1.234 mg/dL
    con, summaries = load(write_export(tmp_path, {"labs.csv": labs}, comma=True))
    assert summaries["labs.csv"].rows_accepted == 1
    assert con.execute("SELECT value FROM ingest.labs").fetchone()[0] == pytest.approx(1.234 * 88.42)


def test_activity_below_the_plausible_minimum_is_rejected(tmp_path):
    cycles = FILES["cycles.csv"][:2] + ["H-001;2;01/03/2019;1e-320;GBq", "H-001;3;01/05/2019;0,4;GBq",
                                        "H-001;4;01/07/2019;3,7;GBq"]
    con, _ = load(write_export(tmp_path, {"cycles.csv": cycles}))
    implausible = "implausible activity (< 0.5 GBq per cycle): check the value and unit"
    assert rejections(con, "cycles.csv") == {3: [("activity", "1e-320", implausible)],
                                             4: [("activity", "0,4", implausible)]}


def test_tabs_zero_width_spaces_and_byte_order_marks_are_trimmed(tmp_path):
    patients = FILES["patients.csv"][:2] + [
        "H-002\t;Bob Example;1958-07-01;\u200bM\u200b;\ufeffgi;ga68_dotatate_pet;;no;\u00a0",
    ]
    con, summaries = load(write_export(tmp_path, {"patients.csv": patients}))
    assert summaries["patients.csv"].rows_rejected == 0
    assert con.execute("SELECT patient_id, sex, primary_site, diabetes FROM ingest.patients"
                       " WHERE patient_id = 'H-002'").fetchall() == [("H-002", "M", "gi", False)]


def test_a_duplicate_column_fails_the_file_naming_it(tmp_path):
    labs = ["patient_id;sample_date;analyte;value;unit;Value", "H-001;05/01/2019;hemoglobin;12,5;g/dL;13"]
    with pytest.raises(ExportFileError, match=r"labs.csv: line 1: duplicate column 'value' in columns 4, 6"):
        load(write_export(tmp_path, {"labs.csv": labs}))


def test_cycles_out_of_date_order_are_both_rejected(tmp_path):
    cycles = FILES["cycles.csv"][:1] + [
        "H-001;1;01/03/2019;7,4;GBq",   # line 2: cycle 1 after cycle 2
        "H-001;2;01/02/2019;7,4;GBq",   # line 3
        "H-001;3;01/05/2019;7,4;GBq",   # line 4: in order
        "H-002;1;01/02/2019;7,4;GBq",   # line 5: another patient, in order
        "H-002;2;01/04/2019;7,4;GBq",   # line 6
    ]
    con, summaries = load(write_export(tmp_path, {"cycles.csv": cycles}))
    fix = ": fix the cycle number or the date at the source"
    assert rejections(con, "cycles.csv") == {
        2: [("cycle_number", "1", "cycle numbers out of date order: cycle 1 is dated after cycle 2" + fix)],
        3: [("cycle_number", "2", "cycle numbers out of date order: cycle 2 is dated before cycle 1" + fix)],
    }
    assert summaries["cycles.csv"].rows_accepted == 3


def test_a_new_file_cycle_out_of_order_with_an_accepted_one(tmp_path):
    raw = write_export(tmp_path, {"cycles.csv": FILES["cycles.csv"][:1] + ["H-001;1;01/03/2019;7,4;GBq"]})
    (raw / "cycles_2019-06-01.csv").write_text(
        "patient_id;cycle_number;administration_date;activity;activity_unit\nH-001;2;01/01/2019;7,4;GBq\n")
    con, _ = load(raw)
    assert rejections(con, "cycles.csv") == {}
    assert [r[2] for r in rejections(con, "cycles_2019-06-01.csv")[2]] == [
        "cycle numbers out of date order: cycle 2 is dated before cycle 1: fix the cycle number or the date at the source"]


def test_patient_ids_differing_in_case_or_leading_zeros_are_listed(tmp_path):
    patients = FILES["patients.csv"][:3] + [
        "0012345;Eve Example;1961-01-01;F;lung;tc99m_octreotide;2;no;",
        "12345;Frank Example;1962-01-01;M;lung;tc99m_octreotide;2;no;",
    ]
    labs = FILES["labs.csv"][:2] + ["h-001;06/01/2019;hemoglobin;12,5;g/dL;;", "h-001;07/01/2019;wbc;5,1;10^9/L;;"]
    con, _ = load(write_export(tmp_path, {"patients.csv": patients, "labs.csv": labs}))
    # ids are matched as written: two patients, and h-001's rows are not H-001's
    assert con.execute("SELECT count(*) FROM ingest.patients WHERE patient_id IN ('0012345', '12345')").fetchone()[0] == 2
    assert [r[2] for r in rejections(con, "labs.csv")[3]] == ["unknown patient_id (no accepted row in patients.csv)"]
    listed = con.execute("SELECT similar_form, patient_id, in_patients_csv, rows_rejected_as_unknown"
                         " FROM audit.similar_patient_ids ORDER BY ALL").fetchall()
    assert listed == [("12345", "0012345", True, 0), ("12345", "12345", True, 0),
                      ("H-1", "H-001", True, 0), ("H-1", "h-001", False, 2)]


def _labs_with_micro(encoding: str, good_rows: int = 0) -> bytes:
    lines = ["patient_id;sample_date;analyte;value;unit;lln;uln"]
    lines += [f"H-001;{1 + i % 28:02d}/01/2019;wbc;5,{i % 10};10^9/L;;" for i in range(good_rows)]
    lines += ["H-001;05/02/2019;creatinine;97;µmol/L;;"]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_a_file_that_is_not_utf8_fails_whole_naming_the_line(tmp_path, encoding):
    raw = write_export(tmp_path, {})
    (raw / "labs.csv").write_bytes(_labs_with_micro(encoding, good_rows=600))  # the bad byte past the first 8 KB
    with pytest.raises(ExportFileError, match=r"^labs.csv: line 602: not UTF-8: export the file as UTF-8, "
                                              r"or declare its encoding with PRRT_EXPORT_ENCODING"):
        load(raw)


def test_a_utf16_file_is_named(tmp_path):
    raw = write_export(tmp_path, {})
    (raw / "labs.csv").write_bytes(_labs_with_micro("utf-16"))
    with pytest.raises(ExportFileError, match=r"^labs.csv: line 1: the file is UTF-16"):
        load(raw)


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-16"])
def test_a_declared_encoding_is_read(tmp_path, monkeypatch, encoding):
    raw = write_export(tmp_path, {})
    for path in raw.glob("*.csv"):  # the whole export in that encoding, as a hospital system writes it
        path.write_bytes(path.read_bytes().decode("utf-8-sig").encode(encoding))
    (raw / "labs.csv").write_bytes(_labs_with_micro(encoding, good_rows=3))
    monkeypatch.setenv("PRRT_EXPORT_ENCODING", encoding)
    con, summaries = load(raw)
    assert (summaries["labs.csv"].rows_read, summaries["labs.csv"].rows_rejected) == (4, 0)
    assert con.execute("SELECT value, unit, source_row FROM ingest.labs WHERE analyte = 'creatinine'").fetchall() == [
        (97.0, "umol/L", 5)]


def test_an_unknown_declared_encoding_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PRRT_EXPORT_ENCODING", "klingon")
    with pytest.raises(ExportFileError, match="PRRT_EXPORT_ENCODING='klingon' is not an encoding"):
        load(write_export(tmp_path, {}))


def test_quoted_newlines_keep_every_line_number_true(tmp_path):
    labs = [
        "patient_id,sample_date,analyte,value,unit,lln,uln,comment",
        'H-001,2019-01-05,hemoglobin,12.5,g/dL,,,"drawn twice\nsecond tube\r\nused"',  # lines 2-4
        "H-001,2019-01-06,hemoglobin,12.6,g/dL,,,",                                     # line 5
        "",                                                                             # line 6 blank
        'H-001,2019-01-07,hemoglobin,12.7,furlongs,,,"a ""quoted""\nnote"',             # lines 7-8: bad unit
        "H-001,2019-01-08,hemoglobin,12.8,g/dL,,,,one too many",                        # line 9: unreadable
        "H-001,2019-01-09,hemoglobin,99,g/dL,,,",                                       # line 10: implausible
    ]
    raw = write_export(tmp_path, {}, comma=True)
    (raw / "labs.csv").write_bytes(("\n".join(labs) + "\n").encode())
    con, summaries = load(raw)
    assert {line: [r[0] for r in rs] for line, rs in rejections(con, "labs.csv").items()} == {
        7: ["unit"], 9: [None], 10: ["value"]}
    assert con.execute("SELECT source_row, value FROM ingest.labs ORDER BY 1").fetchall() == [(2, 12.5), (5, 12.6)]
    assert summaries["labs.csv"].rows_read == 5


def test_line_numbers_at_3_million_rows_with_newlines_early(tmp_path):
    header = "patient_id,sample_date,analyte,value,unit,lln,uln,comment\n"
    early = 'H-001,2019-01-05,hemoglobin,12.5,g/dL,,,"two\nlines"\n'  # lines 2-3
    n = 3_000_000
    raw = write_export(tmp_path, {}, comma=True)
    with (raw / "labs.csv").open("w") as handle:  # distinct rows (an uln of its own), else duplicates
        handle.write(header + early + "".join(f"H-001,2019-01-06,wbc,5.1,10^9/L,,{10 + i},\n" for i in range(n - 2))
                     + "H-001,2019-01-07,wbc,5.1,furlongs,,,\n")
    con, summaries = load(raw)
    assert summaries["labs.csv"].rows_read == n
    # the last row: header + 2 lines of the first row + n - 2 rows -> line n + 2
    assert con.execute("SELECT source_row, field FROM audit.rejected_rows WHERE source_file = 'labs.csv'"
                       " AND field = 'unit'").fetchall() == [(n + 2, "unit")]
    assert con.execute("SELECT min(source_row), max(source_row) FROM ingest.labs WHERE analyte = 'wbc'"
                       " AND sample_date = DATE '2019-01-06'").fetchone() == (4, n + 1)


def test_a_header_only_patients_file_fails_the_export(tmp_path):
    with pytest.raises(ExportFileError, match=r"^patients.csv: no data rows \(only a header\)"):
        load(write_export(tmp_path, {"patients.csv": FILES["patients.csv"][:1]}))
    # a header-only file of another entity is an export with none of those rows
    con, summaries = load(write_export(tmp_path / "b", {"metastases.csv": FILES["metastases.csv"][:1]}))
    assert summaries["metastases.csv"].rows_read == 0
