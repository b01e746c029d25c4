"""Reading one export file into DuckDB as text, keeping each row's line number.

DuckDB reads the CSV (in parallel, in C++); Python only looks at the header line and,
to map rows back to their line in the file, scans for blank lines with numpy. No
Python runs per row.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

_CHUNK = 64 << 20  # bytes per numpy scan window


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
    return "_".join(name.strip().lower().split())


def read_header(path: Path) -> Header:
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
    if not first.strip():
        raise ExportFileError(f"{path.name}: line 1: no header row")
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    delimiter = max(counts, key=counts.get)
    names = tuple(next(csv.reader(io.StringIO(first), delimiter=delimiter)))
    return Header(delimiter, names, tuple(normalise_name(n) for n in names))


def blank_lines(path: Path) -> np.ndarray:
    """1-based numbers of the empty lines (DuckDB skips them, so they shift row numbers)."""
    data = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else np.zeros(0, np.uint8)
    found: list[np.ndarray] = []
    line_offset = 0  # newlines seen before the current chunk
    prev_newline = -1  # absolute position of the last newline before the chunk
    for start in range(0, len(data), _CHUNK):
        chunk = data[start : start + _CHUNK]
        newlines = np.flatnonzero(chunk == 10) + start
        if newlines.size:
            line_starts = np.concatenate(([prev_newline + 1], newlines[:-1] + 1))
            lengths = newlines - line_starts
            # a line is blank when empty, or only '\r' (CRLF files)
            is_cr = np.zeros(lengths.shape, dtype=bool)
            one = lengths == 1
            is_cr[one] = data[line_starts[one]] == 13
            blank = (lengths == 0) | is_cr
            found.append(np.flatnonzero(blank) + 1 + line_offset)
            line_offset += newlines.size
            prev_newline = int(newlines[-1])
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, header: Header) -> None:
    columns = {f"c{i}": "VARCHAR" for i in range(len(header.names))}
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _read AS
        SELECT * FROM read_csv(?, auto_detect = false, header = true, delim = ?, quote = '"',
                               escape = '"', columns = {columns!r}, null_padding = false,
                               store_rejects = true, rejects_table = '_reader_errors',
                               rejects_scan = '_reader_scans', encoding = 'utf-8')
        """,
        [str(path), header.delimiter],
    )


def load_text_table(con: duckdb.DuckDBPyConnection, path: Path, header: Header, table: str) -> list[tuple]:
    """Create ``table`` with one VARCHAR column per header column plus ``_line``.

    Returns the rows DuckDB's CSV reader itself refused (wrong number of fields,
    unterminated quotes) as (line, column_name, error_type, message, csv_line)."""
    try:
        _read_csv(con, path, header)
    except duckdb.InvalidInputException as error:
        # e.g. LF and CRLF mixed in one file: DuckDB's strict parser refuses the file, and a
        # lenient parse would silently drop fields, so the file fails with the reason.
        reason = str(error).splitlines()[0]
        raise ExportFileError(f"{path.name}: not a readable CSV file ({reason})") from error
    reader_errors = con.execute(
        """SELECT line, any_value(column_name), any_value(error_type),
                  string_agg(DISTINCT error_message, '; '), any_value(csv_line)
           FROM _reader_errors GROUP BY line ORDER BY line"""
    ).fetchall()
    skipped = np.union1d(blank_lines(path), np.array([r[0] for r in reader_errors], dtype=np.int64))
    skipped = skipped[skipped > 1]

    def trims(prefix: str = "") -> str:
        return ", ".join(f"nullif(trim({prefix}c{i}), '') AS c{i}" for i in range(len(header.names)))

    drop_text_table(con, table)
    if skipped.size == 0:
        # a view: the typing step reads it once, no need to copy every row first
        con.execute(f"CREATE TEMP VIEW {table} AS SELECT rowid + 2 AS _line, {trims()} FROM _read")
    else:
        # Row k sits on line k + 2 + (number of skipped lines before it). The i-th skipped
        # line s_i (1-based i) is preceded by t_i = s_i - 1 - i data rows.
        i = np.arange(1, skipped.size + 1)
        con.register("_skips_df", {"t": skipped - 1 - i, "j": i})
        con.execute(
            f"""
            CREATE TEMP TABLE {table} AS
            WITH skips AS (SELECT t, max(j) AS j FROM _skips_df GROUP BY t),
                 numbered AS (SELECT rowid AS _k, * FROM _read)
            SELECT _k + 2 + coalesce(s.j, 0) AS _line, {trims('n.')}
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
