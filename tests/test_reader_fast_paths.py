"""The reader's shortcuts give what the long way gives: the byte scan never misses a blank
line or a cell to trim, and rows are numbered the same with or without the join."""

from __future__ import annotations

import random

import duckdb
import pytest

from prrt.ingest import reader
from prrt.ingest.reader import blank_lines, load_text_table, read_header, scan_bytes


@pytest.mark.parametrize(
    ("content", "blank", "trim", "quote"),
    [
        (b"a,b\n1,2\n3,4\n", False, False, False),
        (b"a,b\n1,2\n\n3,4\n", True, False, False),            # blank line
        (b"a,b\r\n1,2\r\n\r\n3,4\r\n", True, False, False),    # blank line, CRLF
        (b"a,b\n1, 2\n", False, True, False),                   # a space to trim
        (b"a,b\n1,\t2\n", False, True, False),                  # a tab to trim
        (b"a,b\n1,\xc2\xa02\n", False, True, False),            # a no-break space (U+00A0)
        (b"a,b\n1,\xc2\xb5mol/L\n", False, True, False),        # any non-ASCII byte: trimmed to be safe
        (b'a,b\n1,"x"\n', False, False, True),                 # a quote: a cell may span lines
        (b"", False, False, False),
    ],
)
def test_byte_scan_flags(tmp_path, content, blank, trim, quote):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    assert scan_bytes(path) == reader.ByteScan(blank, trim, quote)


def test_byte_scan_never_misses_a_blank_line_or_a_space(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "x.csv"
    for _ in range(2000):
        content = bytes(rng.choice(b"ab,\n\r\t 9") for _ in range(rng.randint(0, 30)))
        path.write_bytes(content)
        scan = scan_bytes(path)
        if any(line > 1 for line in blank_lines(path)):
            assert scan.may_have_blank_lines, content
        if b" " in content:
            assert scan.may_need_trimming, content


def test_cells_untrimmed_only_when_nothing_to_trim(tmp_path):
    con = duckdb.connect()
    plain = tmp_path / "plain.csv"
    plain.write_bytes(b"a,b\nx,\ny,z\n")
    load_text_table(con, plain, read_header(plain), "_text")
    assert con.execute("SELECT _line, c0, c1 FROM _text ORDER BY _line").fetchall() == [(2, "x", None), (3, "y", "z")]
    spaced = tmp_path / "spaced.csv"
    spaced.write_bytes(b"a,b\n x ,\xc2\xa0\n\xe3\x80\x80y,z \n")
    load_text_table(con, spaced, read_header(spaced), "_text")
    assert con.execute("SELECT _line, c0, c1 FROM _text ORDER BY _line").fetchall() == [(2, "x", None), (3, "y", "z")]


def test_row_numbers_same_with_expression_and_join(tmp_path, monkeypatch):
    """Many blank and unreadable lines: numbered by a CASE expression up to a limit, by an
    ASOF join beyond it; both give every row its line in the file."""
    rng = random.Random(1)
    lines, expected = [b"k;v"], []
    for i in range(3000):
        kind = rng.random()
        if kind < 0.15:
            lines.append(b"")
        elif kind < 0.2:
            lines.append(b"bad;row;too;many")
        else:
            lines.append(b"r%d;%d" % (i, i))
            expected.append((len(lines), f"r{i}"))
    path = tmp_path / "holes.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    results = []
    for limit in (10_000, 0):  # expression, then join
        monkeypatch.setattr(reader, "_MAX_SKIPS_IN_EXPRESSION", limit)
        con = duckdb.connect()
        load_text_table(con, path, read_header(path), "_text")
        results.append(con.execute("SELECT _line, c0 FROM _text ORDER BY _line").fetchall())
    assert results[0] == results[1] == expected
