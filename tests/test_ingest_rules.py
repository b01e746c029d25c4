"""Cases the messy export does not cover: in one file, a row with several problems, a
duplicate that also has problems and key conflicts among otherwise valid rows; and a blank
line at every position relative to the byte scan's blocks."""

from __future__ import annotations

import duckdb

from prrt.ingest import load_export, reader
from prrt.ingest.reader import blank_lines, scan_bytes

from .messy_export import write_messy_export

KEY = b"test-key"


def test_problems_duplicates_and_key_conflicts_of_one_file(tmp_path):
    raw = write_messy_export(tmp_path / "export")
    (raw / "cycles_2019-06-01.csv").write_text(
        "patient_id,cycle_number,administration_date,activity,activity_unit\n"
        "H-001,7,2019-06-01,7.4,GBq\n"           # line 2 fine
        "H-001,7,2019-06-02,7.4,GBq\n"           # line 3 same key as line 2: conflict
        "H-001,8,2019-13-01,99,GBq\n"            # line 4 bad date and absurd activity
        "H-001,8,2019-13-01,99,GBq\n"            # line 5 the same problems, and a duplicate of 4
        "H-001,7,2019-06-01,7.4,GBq\n"           # line 6 duplicate of 2 (not also a conflict)
        "H-001,9,2019-06-03,7.4,GBq\n"           # line 7 fine
    )
    con = duckdb.connect()
    summaries = {s.source_file: s for s in load_export(con, raw, KEY, run_id="r1")}
    s = summaries["cycles_2019-06-01.csv"]
    assert (s.rows_read, s.rows_accepted, s.rows_rejected) == (6, 2, 4)
    rejected = con.execute(
        "SELECT source_row, field, reason FROM audit.rejected_rows WHERE source_file = 'cycles_2019-06-01.csv'"
        " ORDER BY source_row, reason"
    ).fetchall()
    dated = "unparseable date (expected YYYY-MM-DD or DD/MM/YYYY)"
    absurd = "absurd activity (> 15 GBq per cycle)"
    assert rejected == [
        (3, "cycle_number", "conflicting row for the same patient_id, cycle_number as line 2"),
        (4, "activity", absurd), (4, "administration_date", dated),
        (5, "activity", absurd), (5, "(whole row)", "exact duplicate of line 4"),
        (5, "administration_date", dated),
        (6, "(whole row)", "exact duplicate of line 2"),
    ]
    accepted = con.execute(
        "SELECT source_row, cycle_number FROM ingest.cycles WHERE source_file = 'cycles_2019-06-01.csv' ORDER BY 1"
    ).fetchall()
    assert accepted == [(2, 7), (7, 9)]


def test_byte_scan_finds_a_blank_line_across_a_block_boundary(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "_SCAN_CHUNK", 8)
    path = tmp_path / "x.csv"
    for content in (b"a,b\r\n1,2\r\n\r\n3,4\r\n", b"a,b\n1,2\n\n3,4\n", b"a,b\n1,2\n3,4\n"):
        for shift in range(8):  # the blank line at every position relative to the blocks
            data = b"a" * shift + content
            path.write_bytes(data)
            assert scan_bytes(path).may_have_blank_lines == any(n > 1 for n in blank_lines(path)), data
