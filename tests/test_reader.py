"""Line numbers survive what DuckDB's CSV reader skips or refuses."""

from __future__ import annotations

import duckdb
import pytest

from prrt.ingest.reader import ExportFileError, blank_lines, load_text_table, read_header


def test_blank_and_malformed_lines_keep_true_line_numbers(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(
        b"\xef\xbb\xbfA;B\r\n"      # 1 header (BOM, CRLF)
        b"a1;b1\r\n"                # 2
        b"\r\n"                     # 3 blank
        b"a2;b2;extra\r\n"          # 4 too many fields
        b"\r\n"                     # 5 blank
        b"a3;b3\r\n"                # 6
        b"a4;\"unterminated\r\n"    # 7 unterminated quote
    )
    assert blank_lines(path).tolist() == [3, 5]
    header = read_header(path)
    assert (header.delimiter, header.normalised) == (";", ("a", "b"))
    con = duckdb.connect()
    errors = load_text_table(con, path, header, "_text")
    assert [e[0] for e in errors] == [4, 7]
    assert con.execute("SELECT _line, c0, c1 FROM _text ORDER BY _line").fetchall() == [(2, "a1", "b1"), (6, "a3", "b3")]


def test_plain_file_numbers_rows_from_line_two(tmp_path):
    path = tmp_path / "y.csv"
    path.write_text("x,y\n1,2\n3,4\n")
    con = duckdb.connect()
    assert load_text_table(con, path, read_header(path), "_text") == []
    assert con.execute("SELECT _line, c0 FROM _text ORDER BY _line").fetchall() == [(2, "1"), (3, "3")]


def test_mixed_line_endings_fail_the_file_by_name(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"a;b\r\n1;2\r\n\n3;4\r\n")
    with pytest.raises(ExportFileError, match="mixed.csv: not a readable CSV file"):
        load_text_table(duckdb.connect(), path, read_header(path), "_text")
