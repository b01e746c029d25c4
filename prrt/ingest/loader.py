"""Load one export folder into schema ``ingest`` (clean rows) and ``audit`` (the rest).

Per file: read as text (``reader``), type and check every column (``columns``), apply
the file's own and cross-file rules, reject exact duplicates and conflicting keys,
then split: accepted rows -> ``ingest.<file>``, each problem -> ``audit.rejected_rows``,
and one reconciliation row -> ``audit.load_summary``. Everything runs as DuckDB SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from ..config import SEEDS_DIR
from ..pseudonym import hmac_sql
from .columns import column_sql, problem, problem_list, quote
from .reader import ExportFileError, drop_text_table, load_text_table, read_header
from .spec import CYCLES, EXPORT_FILES, FOLLOW_UP, LABS, MAX_ACTIVITY_GBQ_PER_CYCLE, PATIENTS, PERFORMANCE_STATUS, ExportFile

# record_id = file_id * RECORDS_PER_FILE + line: unique across all files of an entity.
RECORDS_PER_FILE = 10_000_000_000

AUDIT_DDL = """
CREATE SCHEMA IF NOT EXISTS ingest;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.rejected_rows (
    source_file VARCHAR NOT NULL,
    source_row BIGINT NOT NULL,
    patient_id VARCHAR,
    field VARCHAR,
    value VARCHAR,
    reason VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS audit.ingested_files (
    file_id BIGINT NOT NULL,
    source_file VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    size_bytes BIGINT NOT NULL,
    modified_ns BIGINT NOT NULL,
    run_id VARCHAR,
    ingested_at TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE TABLE IF NOT EXISTS audit.load_summary (
    source_file VARCHAR NOT NULL,
    rows_read BIGINT NOT NULL,
    rows_accepted BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    loaded_at TIMESTAMP WITH TIME ZONE NOT NULL,
    ignored_columns VARCHAR
);
"""


@dataclass(frozen=True)
class FileSummary:
    source_file: str
    rows_read: int
    rows_accepted: int
    rows_rejected: int


def normalised_unit(raw: str) -> str:
    """Unit spelling as in the unit_conversions seed: lower case, no spaces, µ -> u."""
    return f"replace(replace(replace(lower({raw}), ' ', ''), 'µ', 'u'), 'μ', 'u')"


def _load_seeds(con: duckdb.DuckDBPyConnection, seeds_dir: Path) -> None:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _unit_conversions AS SELECT * FROM read_csv(?, header = true)",
        [str(seeds_dir / "unit_conversions.csv")],
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _lab_analytes AS SELECT * FROM read_csv(?, header = true)",
        [str(seeds_dir / "lab_analytes.csv")],
    )


# --- file-specific rules: (extra SELECT columns, extra JOINs, extra problems, output columns)


def _rules(spec: ExportFile) -> tuple[list[str], list[str], list[str]]:
    """Derived columns, joins and problems beyond the per-column checks."""
    if spec is CYCLES:
        unit = normalised_unit("t.raw_activity_unit")
        return (
            ["t.activity * u.multiplier AS activity_gbq"],
            [f"LEFT JOIN _unit_conversions u ON u.quantity = 'activity' AND u.unit = {unit}"],
            [
                problem("activity_unit", "t.raw_activity_unit",
                        "t.raw_activity_unit IS NOT NULL AND u.unit IS NULL",
                        quote("unknown unit (accepted: GBq, MBq, mCi)")),
                problem("activity", "t.raw_activity", "t.activity * u.multiplier <= 0",
                        quote("activity must be positive")),
                problem("activity", "t.raw_activity",
                        f"t.activity * u.multiplier > {MAX_ACTIVITY_GBQ_PER_CYCLE}",
                        quote(f"absurd activity (> {MAX_ACTIVITY_GBQ_PER_CYCLE:g} GBq per cycle)")),
            ],
        )
    if spec is LABS:
        unit = normalised_unit("t.raw_unit")
        return (
            [
                "t.value * u.multiplier AS value_canonical",
                "t.lln * u.multiplier AS lln_canonical",
                "t.uln * u.multiplier AS uln_canonical",
                "u.canonical_unit",
            ],
            [
                f"LEFT JOIN _unit_conversions u ON u.quantity = t.analyte AND u.unit = {unit}",
                "LEFT JOIN _lab_analytes a ON a.analyte = t.analyte",
            ],
            [
                problem("unit", "t.raw_unit",
                        "t.raw_unit IS NOT NULL AND t.analyte IS NOT NULL AND u.unit IS NULL",
                        "'unknown unit for ' || t.analyte"),
                problem("value", "t.raw_value",
                        "t.value * u.multiplier NOT BETWEEN a.plausible_min AND a.plausible_max",
                        "'implausible value: ' || round(t.value * u.multiplier, 3) || ' ' || u.canonical_unit"
                        " || ' (allowed ' || a.plausible_min || '-' || a.plausible_max || ')'"),
                problem("lln", "t.raw_lln", "t.lln < 0", quote("negative reference limit")),
                problem("uln", "t.raw_uln", "t.uln < t.lln", quote("uln below lln")),
            ],
        )
    if spec is PERFORMANCE_STATUS:
        return ([], [], [problem("ecog", "t.raw_ecog", "t.ecog IS NULL AND t.kps IS NULL AND t.raw_ecog IS NULL"
                                 " AND t.raw_kps IS NULL", quote("neither ecog nor kps given"))])
    if spec is FOLLOW_UP:
        return (
            [],
            ["LEFT JOIN (SELECT patient_id, min(administration_date) AS first_administration"
             " FROM ingest.cycles GROUP BY patient_id) c ON c.patient_id = t.patient_id"],
            [
                problem("death_date", "t.raw_death_date",
                        "t.vital_status = 'dead' AND t.raw_death_date IS NULL",
                        quote("death_date required when vital_status is dead")),
                problem("death_date", "t.raw_death_date",
                        "t.vital_status = 'alive' AND t.death_date IS NOT NULL",
                        quote("death_date given but vital_status is alive")),
                problem("death_date", "t.raw_death_date", "t.death_date < c.first_administration",
                        "'death before the first administration (' || c.first_administration || ')'"),
                problem("last_contact_date", "t.raw_last_contact_date",
                        "t.last_contact_date > t.death_date", quote("last contact after death")),
                problem("last_contact_date", "t.raw_last_contact_date",
                        "t.last_contact_date < c.first_administration",
                        "'last contact before the first administration (' || c.first_administration || ')'"),
            ],
        )
    return [], [], []


def _output_columns(spec: ExportFile) -> list[str]:
    """Columns of ``ingest.<file>`` (docs/design.md), after patient_key and patient_id."""
    if spec is CYCLES:
        return ["cycle_number", "administration_date", "activity_gbq", "amino_acid_infusion"]
    if spec is LABS:
        return ["sample_date", "analyte", "value_canonical AS value", "canonical_unit AS unit",
                "lln_canonical AS lln", "uln_canonical AS uln"]
    skip = {"patient_id", "full_name"}  # full_name is read only to be dropped
    return [c.name for c in spec.columns if c.name not in skip]


def export_files(raw_dir: Path, spec: ExportFile) -> list[Path]:
    """The entity's files: ``labs.csv`` and any ``labs*.csv`` beside it (e.g. a daily
    ``labs_2026-11-27.csv``), in name order, so the base file loads first."""
    return sorted(p for p in Path(raw_dir).glob(f"{spec.name}*.csv") if p.is_file())


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?", [schema, table]
    ).fetchone()[0] > 0


def _next_file_id(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT coalesce(max(file_id), 0) + 1 FROM audit.ingested_files").fetchone()[0]


def _load_file(con: duckdb.DuckDBPyConnection, spec: ExportFile, path: Path, key: bytes, run_id: str) -> FileSummary:
    header = read_header(path)
    index = {name: i for i, name in reversed(list(enumerate(header.normalised)))}
    missing = [c.name for c in spec.columns if c.required and c.name not in index]
    if missing:
        raise ExportFileError(
            f"{path.name}: line 1: required column {', '.join(repr(m) for m in missing)} missing"
            f" (header has: {', '.join(header.names)})"
        )
    known = {c.name for c in spec.columns}
    ignored = [n for n in header.names if header.normalised[header.names.index(n)] not in known]
    file_id = _next_file_id(con)

    reader_errors = load_text_table(con, path, header, "_text")

    # 1. type every column and collect per-column problems
    selects, problems = [], []
    for col in spec.columns:
        raw = f"c{index[col.name]}" if col.name in index else "CAST(NULL AS VARCHAR)"
        typed, col_problems = column_sql(col, raw, header.decimal_comma)
        selects += [f"{raw} AS raw_{col.name}", f"{typed} AS {col.name}"]
        problems += col_problems
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _typed AS
            SELECT _line, {', '.join(selects)},
                   {problem_list(problems)} AS _problems
            FROM _text"""
    )

    # 2. file rules, cross-file rules (known patient, dates after birth), exact duplicates
    derived, joins, extra = _rules(spec)
    if spec is not PATIENTS:
        joins.append("LEFT JOIN ingest.patients p ON p.patient_id = t.patient_id")
        derived.append("p.patient_key AS _patient_key")
        extra.append(problem("patient_id", "t.raw_patient_id", "t.patient_id IS NOT NULL AND p.patient_id IS NULL",
                             quote("unknown patient_id (no accepted row in patients.csv)")))
        for date_col in spec.date_columns:
            extra.append(problem(date_col, f"t.raw_{date_col}", f"t.{date_col} < p.birth_date",
                                 "'date before birth (' || p.birth_date || ')'"))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _checked AS
            SELECT t.* EXCLUDE (_problems) {''.join(', ' + d for d in derived)},
                   list_concat(t._problems, {problem_list(extra)}) AS _problems
            FROM _typed t {' '.join(joins)}"""
    )

    _reject_exact_duplicates(con, spec)

    # 3. of two otherwise valid rows with the same business key, the later is rejected
    if spec.key:
        keys = ", ".join(spec.key)
        first = f"first_value(_line) OVER (PARTITION BY {keys}, len(_problems) = 0 ORDER BY _line)"
        con.execute(
            f"""UPDATE _checked SET _problems = [{{'field': {quote(spec.key[-1])}, 'value': raw_{spec.key[-1]},
                   'reason': 'conflicting row for the same {keys} as line ' || k.first_line}}]
                FROM (SELECT _line AS line, {first} AS first_line FROM _checked) k
                WHERE _checked._line = k.line AND len(_problems) = 0 AND k.first_line <> k.line"""
        )

    # 4. against rows already accepted from the entity's earlier files (same or earlier refresh)
    outputs = ", ".join(_output_columns(spec))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _out AS
            SELECT {hmac_sql('patient_id', key) if spec is PATIENTS else '_patient_key'} AS patient_key,
                   patient_id, {outputs},
                   _line AS source_row, {quote(path.name)} AS source_file,
                   CAST({file_id} AS BIGINT) * {RECORDS_PER_FILE} + _line AS record_id, _line
            FROM _checked WHERE len(_problems) = 0"""
    )
    if _exists(con, "ingest", spec.name):
        _reject_against_earlier_files(con, spec)
        con.execute("DELETE FROM _out WHERE _line IN (SELECT _line FROM _checked WHERE len(_problems) > 0)")

    # 5. split: problems -> audit, the rest -> ingest.<file>
    con.execute(
        f"""INSERT INTO audit.rejected_rows
            SELECT {quote(path.name)}, _line, raw_patient_id, p.field, p.value, p.reason
            FROM (SELECT _line, raw_patient_id, unnest(_problems) AS p FROM _checked WHERE len(_problems) > 0)
            ORDER BY _line"""
    )
    for line, column, error_type, message, csv_line in reader_errors:
        field = header.normalised[int(column[1:])] if column and column.startswith("c") else None
        con.execute(
            "INSERT INTO audit.rejected_rows VALUES (?, ?, NULL, ?, ?, ?)",
            [path.name, line, field, (csv_line or "").strip(), f"unreadable row ({error_type.lower()}): {message}"],
        )
    con.execute(f"CREATE TABLE IF NOT EXISTS ingest.{spec.name} AS SELECT * EXCLUDE (_line) FROM _out WHERE false")
    con.execute(f"INSERT INTO ingest.{spec.name} BY NAME SELECT * EXCLUDE (_line) FROM _out")
    accepted, rejected = con.execute(
        "SELECT count(*) FILTER (len(_problems) = 0), count(*) FILTER (len(_problems) > 0) FROM _checked"
    ).fetchone()
    rejected += len(reader_errors)
    summary = FileSummary(path.name, accepted + rejected, accepted, rejected)
    now = datetime.now(timezone.utc)
    con.execute(
        "INSERT INTO audit.load_summary VALUES (?, ?, ?, ?, ?, ?)",
        [summary.source_file, summary.rows_read, summary.rows_accepted, summary.rows_rejected,
         now, ", ".join(ignored) or None],
    )
    stat = path.stat()
    con.execute(
        "INSERT INTO audit.ingested_files VALUES (?, ?, ?, ?, ?, ?, ?)",
        [file_id, path.name, spec.name, stat.st_size, stat.st_mtime_ns, run_id, now],
    )
    drop_text_table(con, "_text")
    for table in ("_read", "_typed", "_checked", "_out", "_reader_errors", "_reader_scans"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return summary


def _reject_exact_duplicates(con: duckdb.DuckDBPyConnection, spec: ExportFile) -> None:
    """Rows identical, as written, to an earlier row of the same file. Grouping millions of
    rows by all their text columns is slow; grouping by a 64-bit hash of them is not, and
    the few candidates it finds are then compared column by column, so the result is exact."""
    raw_cols = [f"raw_{c.name}" for c in spec.columns]
    same = " AND ".join(f"c.{col} IS NOT DISTINCT FROM f.{col}" for col in raw_cols)
    con.execute(
        f"""UPDATE _checked SET _problems = list_append(_problems,
                   {{'field': '(whole row)', 'value': NULL, 'reason': 'exact duplicate of line ' || d.first_line}})
            FROM (
                WITH hashed AS (SELECT _line, hash({', '.join(raw_cols)}) AS _hash FROM _checked),
                     repeated AS (SELECT _hash FROM hashed GROUP BY _hash HAVING count(*) > 1)
                SELECT c._line, min(f._line) AS first_line
                FROM (SELECT k.*, first_value(k._line) OVER (PARTITION BY h._hash ORDER BY k._line) AS _first
                      FROM hashed h SEMI JOIN repeated r ON h._hash = r._hash
                      JOIN _checked k ON k._line = h._line) c
                JOIN _checked f ON f._line = c._first AND {same}
                WHERE c._first <> c._line
                GROUP BY c._line
            ) d
            WHERE _checked._line = d._line"""
    )


def _reject_against_earlier_files(con: duckdb.DuckDBPyConnection, spec: ExportFile) -> None:
    """Exact duplicates of, and business-key conflicts with, rows accepted from earlier files.

    Compared on the typed, canonical values: the same lab result sent in g/L yesterday and
    in g/dL today is one result. The new rows are few (a day's export), so these joins
    probe the accepted table once each."""
    value_cols = ["patient_id", *(c.split(" AS ")[-1] for c in _output_columns(spec))]
    same_row = " AND ".join(f"o.{c} IS NOT DISTINCT FROM e.{c}" for c in value_cols)
    checks = [(same_row, "'exact duplicate of ' || e.source_file || ' line ' || e.source_row", "(whole row)", "NULL")]
    if spec.key and spec.key_across_files:
        same_key = " AND ".join(f"o.{c} = e.{c}" for c in spec.key)
        checks.append((same_key, f"'conflicting row for the same {', '.join(spec.key)} as ' || e.source_file"
                                 " || ' line ' || e.source_row", spec.key[-1], f"_checked.raw_{spec.key[-1]}"))
    for condition, reason, field, value in checks:
        con.execute(
            f"""UPDATE _checked SET _problems = [{{'field': {quote(field)}, 'value': {value}, 'reason': m.reason}}]
                FROM (SELECT o._line, any_value({reason}) AS reason
                      FROM _out o JOIN ingest.{spec.name} e ON {condition} GROUP BY o._line) m
                WHERE _checked._line = m._line AND len(_problems) = 0"""
        )


def load_export(
    con: duckdb.DuckDBPyConnection,
    raw_dir: Path,
    key: bytes,
    files: tuple[ExportFile, ...] = EXPORT_FILES,
    seeds_dir: Path = SEEDS_DIR,
    *,
    only: set[str] | None = None,
    run_id: str = "",
) -> list[FileSummary]:
    """Load the export files of ``raw_dir`` (entities in dependency order, each entity's
    files in name order), appending to ``ingest`` and ``audit``. ``only``: the file names
    to load (an incremental refresh loads just the new ones); default all."""
    con.execute(AUDIT_DDL)
    _load_seeds(con, seeds_dir)
    summaries = []
    for spec in files:
        paths = export_files(raw_dir, spec)
        if not paths:
            raise ExportFileError(f"{spec.filename}: file missing from export folder {raw_dir}")
        for path in paths:
            if only is None or path.name in only:
                summaries.append(_load_file(con, spec, path, key, run_id))
    return summaries
