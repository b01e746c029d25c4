"""Reading one export file into DuckDB as text, keeping each row's line number.

DuckDB reads the CSV (in parallel, in C++) and trims every cell as it stores it (unless a
look at the file's bytes shows there is nothing to trim); Python only looks at the header
line and, to map rows back to their line in the file, looks for blank lines (that same
look first; numpy finds their numbers when there are any). No Python runs per row.
"""

from __future__ import annotations

import contextlib
import csv
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

_CHUNK = 64 << 20  # bytes per numpy scan window
_SCAN_CHUNK = 16 << 20  # bytes per block of the quick byte scan
# Above this many blank or unreadable lines, rows are numbered with a join instead of an
# expression (a balanced CASE over the skipped lines, evaluated per row).
_MAX_SKIPS_IN_EXPRESSION = 4096


# What "cells are trimmed" removes at either end of a cell: spaces and tabs, the Unicode space
# separators (no-break, en/em, ideographic ...), zero-width spaces and a stray byte-order mark.
# Line breaks inside a quoted cell are kept (they are part of the value).
TRIMMED = (" \t\u00a0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200C))
           + "\u202f\u205f\u3000\ufeff")


class ExportFileError(ValueError):
    """A whole file cannot be loaded (missing file, missing required column, no header)."""


@dataclass(frozen=True)
class Header:
    delimiter: str
    names: tuple[str, ...]  # as written in the file
    normalised: tuple[str, ...]  # lower case, trimmed, inner spaces -> '_'

    @property
    def decimal_comma(self) -> bool:
        # Semicolon files come from locales that write 1,5 for 1.5 (contract section 2).
        return self.delimiter == ";"


def normalise_name(name: str) -> str:
    return "_".join(name.strip(TRIMMED).strip().lower().split())


ENCODING_HINT = "export the file as UTF-8, or declare its encoding with PRRT_EXPORT_ENCODING (e.g. cp1252, latin-1, utf-16)"


def read_header(path: Path) -> Header:
    # Only the header line is decoded here (a text-mode readline would decode the first ~8 KB,
    # and fail on a bad byte in a data row, which the CSV reader then reports with its line).
    with path.open("rb") as handle:
        line = handle.readline()
    if line.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ExportFileError(f"{path.name}: line 1: the file is UTF-16, not UTF-8: {ENCODING_HINT}")
    try:
        first = line.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ExportFileError(
            f"{path.name}: line 1: not UTF-8 (byte {error.start + 1} of the header): {ENCODING_HINT}"
        ) from None
    if not first.strip():
        raise ExportFileError(f"{path.name}: line 1: no header row")
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    delimiter = max(counts, key=counts.get)
    names = tuple(next(csv.reader(io.StringIO(first), delimiter=delimiter)))
    return Header(delimiter, names, tuple(normalise_name(n) for n in names))


@contextlib.contextmanager
def as_utf8(path: Path, encoding: str | None):
    """``path`` itself when the export is UTF-8 (``encoding`` None), else a private UTF-8 copy
    of it under the same name (so messages name the file), decoded from ``encoding`` and
    removed on exit. Lines are kept as they are, so line numbers do not change."""
    if encoding is None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="prrt-transcode-") as directory:  # mode 0700
        copy = Path(directory) / path.name
        line = 1
        try:
            with path.open("r", encoding=encoding, newline="") as source, copy.open("w", encoding="utf-8",
                                                                                    newline="") as target:
                for text in source:
                    target.write(text)
                    line += 1
        except UnicodeError:  # a byte that is not of the encoding, or UTF-16 without its byte-order mark
            raise ExportFileError(f"{path.name}: line {line}: not valid {encoding}: check PRRT_EXPORT_ENCODING"
                                  ) from None
        yield copy


def _blocks(path: Path, size: int | None = None):
    """The file's bytes, ``size`` at a time, as numpy arrays. Read into memory rather than
    memory-mapped: a mapped file's pages count in the process's resident memory as they are
    touched, so mapping a 5 GB labs.csv showed as 5 GB of RSS."""
    with path.open("rb") as handle:
        while block := handle.read(size or _CHUNK):
            yield np.frombuffer(block, np.uint8)


def blank_lines(path: Path) -> np.ndarray:
    """1-based numbers of the empty lines (DuckDB skips them, so they shift row numbers)."""
    found: list[np.ndarray] = []
    line_offset = 0  # newlines seen before the current chunk
    prev_newline = -1  # absolute position of the last newline before the chunk
    last_byte = -1  # the byte before the current chunk
    start = 0
    for chunk in _blocks(path):
        newlines = np.flatnonzero(chunk == 10)
        if newlines.size:
            absolute = newlines + start
            line_starts = np.concatenate(([prev_newline + 1], absolute[:-1] + 1))
            lengths = absolute - line_starts
            # a line is blank when empty, or only '\r' (CRLF files): the byte before its newline
            before = np.where(newlines > 0, chunk[np.maximum(newlines - 1, 0)], last_byte)
            blank = (lengths == 0) | ((lengths == 1) & (before == 13))
            found.append(np.flatnonzero(blank) + 1 + line_offset)
            line_offset += newlines.size
            prev_newline = int(absolute[-1])
        last_byte = int(chunk[-1])
        start += chunk.size
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class ByteScan:
    """What one quick look at the file's bytes rules out (each flag may be a false alarm)."""

    may_have_blank_lines: bool
    may_need_trimming: bool
    may_have_quoted_newlines: bool = True  # any '"' at all: a quoted cell may span lines


def scan_bytes(path: Path) -> ByteScan:
    """Rule out, at memory speed, the two things that cost a pass per row when present:

    - blank lines (``blank_lines`` then runs): a blank line is a newline followed by a
      newline or by ``\r`` -- looked for as a newline followed by any byte 8-15, so a line
      starting with a tab is a (harmless) false alarm;
    - cells that trimming would change: it strips only the ``TRIMMED`` characters (space,
      tab and non-ASCII spaces), so a file with no space or tab byte and no byte >= 0x80 (no
      non-ASCII character at all) has none."""
    blank = non_ascii = has_space = has_quote = False
    carried = np.zeros(0, np.uint8)  # the previous block's last byte: a pair may straddle blocks
    for chunk in _blocks(path, _SCAN_CHUNK):
        if not (has_space and has_quote):
            data = chunk.tobytes()
            has_space = has_space or data.find(b" ") != -1 or data.find(b"\t") != -1
            has_quote = has_quote or data.find(b'"') != -1
        non_ascii = non_ascii or int(chunk.max()) >= 0x80
        if not blank:
            pairs = np.concatenate((carried, chunk))
            # a newline (10) followed by a byte 8-15 (\n, \r among them): (b | 7) == 15
            blank = bool(((pairs[:-1] == 10) & ((pairs[1:] | 7) == 15)).any())
        carried = chunk[-1:]
        if blank and (non_ascii or has_space) and has_quote:
            break
    return ByteScan(blank, has_space or non_ascii, has_quote)


def continuation_lines(path: Path) -> np.ndarray:
    """1-based numbers of the lines that begin inside a quoted cell (after a newline with an
    odd number of '"' before it; a doubled '""' keeps the parity, as in RFC 4180): part of
    the record started above them, not rows of their own."""
    continuations: list[np.ndarray] = []
    newlines_before = quotes_before = 0
    for chunk in _blocks(path):
        newlines = np.flatnonzero(chunk == 10)
        quotes = np.flatnonzero(chunk == 34)
        odd = (quotes_before + np.searchsorted(quotes, newlines)) % 2 == 1
        # the chunk's j-th newline ends line newlines_before + j + 1: the line after it continues
        continuations.append(newlines_before + np.flatnonzero(odd) + 2)
        quotes_before += quotes.size
        newlines_before += newlines.size
    return np.concatenate(continuations) if continuations else np.zeros(0, dtype=np.int64)


def physical_lines(records: np.ndarray, continuations: np.ndarray) -> np.ndarray:
    """The file lines of DuckDB's record numbers: DuckDB counts a record with quoted newlines
    as one line. The i-th continuation line c_i (0-based) has c_i - i - 1 record lines before
    it, so record L starts after the continuation lines with c_i - i <= L."""
    return records + np.searchsorted(continuations - np.arange(continuations.size), records, side="right")


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, header: Header, keep: list[int], trim: bool) -> None:
    # Cells are trimmed (empty -> NULL) once, as they are stored (``trim`` False: the file
    # has nothing to trim); columns nobody reads (extra columns) are not stored at all.
    columns = {f"c{i}": "VARCHAR" for i in range(len(header.names))}
    cells = [f"nullif(trim(c{i}, '{TRIMMED}'), '') AS c{i}" if trim else f"nullif(c{i}, '') AS c{i}" for i in keep]
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _read AS
        SELECT {', '.join(cells)}
        FROM read_csv(?, auto_detect = false, header = true, delim = ?, quote = '"',
                      escape = '"', columns = {columns!r}, null_padding = false,
                      store_rejects = true, rejects_table = '_reader_errors',
                      rejects_scan = '_reader_scans', encoding = 'utf-8')
        """,
        [str(path), header.delimiter],
    )


def _skip_offset(skipped: np.ndarray, k: str) -> str:
    """SQL for how many skipped lines precede row ``k`` (0-based): a balanced CASE over the
    distinct thresholds. The i-th skipped line s_i (1-based i) is preceded by t_i = s_i - 1 - i
    data rows, so row k has count(t_i <= k) skipped lines before it."""
    t = skipped - 1 - np.arange(1, skipped.size + 1)
    thresholds, counts = np.unique(t, return_counts=True)
    before = np.cumsum(counts)  # skipped lines up to and including each threshold

    def search(lo: int, hi: int, base: int) -> str:
        if lo > hi:
            return str(base)
        mid = (lo + hi) // 2
        return (f"CASE WHEN {k} < {int(thresholds[mid])} THEN {search(lo, mid - 1, base)} "
                f"ELSE {search(mid + 1, hi, int(before[mid]))} END")

    return search(0, thresholds.size - 1, 0)


def load_text_table(
    con: duckdb.DuckDBPyConnection, path: Path, header: Header, table: str, keep: list[int] | None = None
) -> list[tuple]:
    """Create ``table`` with one trimmed VARCHAR column ``c<i>`` per header column (only the
    columns in ``keep``, default all) plus ``_line``, the row's line in the file.

    Returns the rows DuckDB's CSV reader itself refused (wrong number of fields,
    unterminated quotes, invalid encoding, over-long lines) as (line, column_name,
    error_type, message). The line as written is not returned: it can hold a name and a
    birth date, and nothing of an unreadable row but its position and reason is kept."""
    keep = list(range(len(header.names))) if keep is None else sorted(keep)
    scan = scan_bytes(path)
    try:
        _read_csv(con, path, header, keep, trim=scan.may_need_trimming)
    except duckdb.InvalidInputException as error:
        # e.g. LF and CRLF mixed in one file: DuckDB's strict parser refuses the file, and a
        # lenient parse would silently drop fields, so the file fails with the reason.
        reason = str(error).splitlines()[0]
        raise ExportFileError(f"{path.name}: not a readable CSV file ({reason})") from error
    refused = con.execute(
        """SELECT line, any_value(column_name), any_value(error_type),
                  string_agg(DISTINCT error_message, '; ')
           FROM _reader_errors GROUP BY line ORDER BY line"""
    ).fetchall()
    # DuckDB numbers records, not lines: a quoted cell's newlines shift every later line
    continuations = continuation_lines(path) if scan.may_have_quoted_newlines else np.zeros(0, dtype=np.int64)
    error_lines = physical_lines(np.array([r[0] for r in refused], dtype=np.int64), continuations)
    reader_errors = [(int(line), *rest) for line, (_, *rest) in zip(error_lines, refused)]
    # A byte that is not UTF-8 means the file is in another encoding (a latin-1 or cp1252
    # export): rejecting its accented rows one by one would load the rest, so the file fails.
    not_utf8 = [line for line, _, error_type, _ in reader_errors if error_type == "INVALID ENCODING"]
    if not_utf8:
        raise ExportFileError(f"{path.name}: line {not_utf8[0]}: not UTF-8: {ENCODING_HINT}")
    blanks = blank_lines(path) if scan.may_have_blank_lines else np.zeros(0, dtype=np.int64)
    # lines that start no accepted row: blank lines, refused records, and the continuation
    # lines of records with a quoted newline
    skipped = np.union1d(np.union1d(blanks, error_lines), continuations)
    skipped = skipped[skipped > 1]
    columns = ", ".join(f"c{i}" for i in keep)

    drop_text_table(con, table)
    if skipped.size == 0:
        # a view: the typing step reads it once, no need to copy every row first
        con.execute(f"CREATE TEMP VIEW {table} AS SELECT rowid + 2 AS _line, {columns} FROM _read")
    elif skipped.size <= _MAX_SKIPS_IN_EXPRESSION:
        # Row k sits on line k + 2 + (number of skipped lines before it).
        con.execute(
            f"CREATE TEMP VIEW {table} AS SELECT rowid + 2 + ({_skip_offset(skipped, 'rowid')}) AS _line,"
            f" {columns} FROM _read"
        )
    else:
        # Many skipped lines: the same numbering with an ASOF join.
        i = np.arange(1, skipped.size + 1)
        con.register("_skips_df", {"t": skipped - 1 - i, "j": i})
        con.execute(
            f"""
            CREATE TEMP TABLE {table} AS
            WITH skips AS (SELECT t, max(j) AS j FROM _skips_df GROUP BY t),
                 numbered AS (SELECT rowid AS _k, * FROM _read)
            SELECT _k + 2 + coalesce(s.j, 0) AS _line, {', '.join(f'n.c{i}' for i in keep)}
            FROM numbered n ASOF LEFT JOIN skips s ON n._k >= s.t
            ORDER BY _k
            """
        )
        con.unregister("_skips_df")
    return reader_errors


def drop_text_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Drop what ``load_text_table`` made: ``table`` (a view or a table) and the raw read."""
    kind = con.execute(
        "SELECT 'VIEW' FROM duckdb_views() WHERE view_name = ? AND temporary"
        " UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = ? AND temporary", [table, table]
    ).fetchone()
    if kind:
        con.execute(f"DROP {kind[0]} {table}")
