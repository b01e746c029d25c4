"""Load one export folder into schema ``ingest`` (clean rows) and ``audit`` (the rest).

Per file: read as text (``reader``), then in one pass type and check every column
(``columns``) and apply the file's own and cross-file rules; reject exact duplicates and
conflicting keys, then split: accepted rows -> ``ingest.<file>``, each problem ->
``audit.rejected_rows``, and one reconciliation row -> ``audit.load_summary``. Everything
runs as DuckDB SQL; the statements are few and each intermediate table is dropped as soon
as it has been used (a 10-million-row file stays well inside the memory limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from ..config import SEEDS_DIR, export_encoding
from ..pseudonym import hmac_sql
from .columns import PROBLEM_TYPE, column_parts, problem, problem_list, quote
from .reader import ExportFileError, as_utf8, drop_text_table, load_text_table, read_header
from .spec import (
    CYCLES,
    EXPORT_FILES,
    FOLLOW_UP,
    LABS,
    MAX_ACTIVITY_GBQ_PER_CYCLE,
    MIN_ACTIVITY_GBQ_PER_CYCLE,
    PATIENTS,
    PERFORMANCE_STATUS,
    ExportFile,
)

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

# Per file name, the column whose values are converted with the unit_conversions seed.
UNIT_COLUMNS = {CYCLES.name: "activity_unit", LABS.name: "unit"}


def _file_units(con: duckdb.DuckDBPyConnection, spec: ExportFile, raw: dict[str, str]) -> None:
    """``_file_units``: the unit_conversions rows matching each unit spelling found in the
    file (column ``spelling``, as written). Rows are joined on the spelling itself, so a
    spelling is normalised once per file instead of once per row."""
    column = UNIT_COLUMNS.get(spec.name)
    if column:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _file_units AS
                SELECT s.spelling, u.* FROM (SELECT DISTINCT {raw[column]} AS spelling FROM _text) s
                JOIN _unit_conversions u ON u.unit = {normalised_unit('s.spelling')}"""
        )


def _rules(spec: ExportFile) -> tuple[list[str], list[str], list[str]]:
    """Derived columns, joins and problems beyond the per-column checks."""
    if spec is CYCLES:
        return (
            ["t.activity * u.multiplier AS activity_gbq"],
            ["LEFT JOIN _file_units u ON u.quantity = 'activity' AND u.spelling = t.raw_activity_unit"],
            [
                problem("activity_unit", "t.raw_activity_unit",
                        "t.raw_activity_unit IS NOT NULL AND u.unit IS NULL",
                        quote("unknown unit (accepted: GBq, MBq, mCi)")),
                problem("activity", "t.raw_activity", "t.activity * u.multiplier <= 0",
                        quote("activity must be positive")),
                problem("activity", "t.raw_activity",
                        f"t.activity * u.multiplier > 0 AND t.activity * u.multiplier < {MIN_ACTIVITY_GBQ_PER_CYCLE}",
                        quote(f"implausible activity (< {MIN_ACTIVITY_GBQ_PER_CYCLE:g} GBq per cycle): check the value and unit")),
                problem("activity", "t.raw_activity",
                        f"t.activity * u.multiplier > {MAX_ACTIVITY_GBQ_PER_CYCLE}",
                        quote(f"absurd activity (> {MAX_ACTIVITY_GBQ_PER_CYCLE:g} GBq per cycle)")),
            ],
        )
    if spec is LABS:
        return (
            [
                "t.value * u.multiplier AS value_canonical",
                "t.lln * u.multiplier AS lln_canonical",
                "t.uln * u.multiplier AS uln_canonical",
                "u.canonical_unit",
            ],
            [
                "LEFT JOIN _file_units u ON u.quantity = t.analyte AND u.spelling = t.raw_unit",
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


def _checked_columns(spec: ExportFile) -> list[str]:
    """The parsed columns kept in ``_checked`` besides the derived ones (``_rules``): what
    later steps read -- patient_id, the key (and its last column as written, for the
    conflict message) and the outputs. The rest of the text is not carried along."""
    names = {c.name for c in spec.columns}
    wanted = ["patient_id", *spec.key, *(o.split(" AS ")[0] for o in _output_columns(spec))]
    if spec.key:
        wanted.append(f"raw_{spec.key[-1]}")
    return [n for n in dict.fromkeys(wanted) if n in names or n.startswith("raw_")]  # derived ones come with _rules


def _load_file(con: duckdb.DuckDBPyConnection, spec: ExportFile, path: Path, key: bytes, run_id: str,
               encoding: str | None = None) -> FileSummary:
    with as_utf8(path, encoding) as readable:
        summary = _load_utf8_file(con, spec, readable, key, run_id)
    stat = path.stat()  # the export's own file, for the next refresh's plan
    con.execute(
        "INSERT INTO audit.ingested_files VALUES (?, ?, ?, ?, ?, ?, ?)",
        [summary.file_id, path.name, spec.name, stat.st_size, stat.st_mtime_ns, run_id, summary.loaded_at],
    )
    return FileSummary(summary.source_file, summary.rows_read, summary.rows_accepted, summary.rows_rejected)


@dataclass(frozen=True)
class _Loaded:
    source_file: str
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    file_id: int
    loaded_at: datetime


def _load_utf8_file(con: duckdb.DuckDBPyConnection, spec: ExportFile, path: Path, key: bytes, run_id: str) -> _Loaded:
    header = read_header(path)
    repeated = sorted({n for n in header.normalised if header.normalised.count(n) > 1})
    if repeated:  # which one holds the data? Never a guess
        positions = "; ".join(f"{n!r} in columns {', '.join(str(i + 1) for i, m in enumerate(header.normalised) if m == n)}"
                              for n in repeated)
        raise ExportFileError(f"{path.name}: line 1: duplicate column {positions}: keep one of each")
    index = {name: i for i, name in enumerate(header.normalised)}
    missing = [c.name for c in spec.columns if c.required and c.name not in index]
    if missing:
        raise ExportFileError(
            f"{path.name}: line 1: required column {', '.join(repr(m) for m in missing)} missing"
            f" (header has: {', '.join(header.names)})"
        )
    known = {c.name for c in spec.columns}
    ignored = [n for n in header.names if header.normalised[header.names.index(n)] not in known]
    file_id = _next_file_id(con)

    # each column's text in _text (only the file's columns the spec knows are kept)
    raw = {c.name: f"c{index[c.name]}" if c.name in index else "CAST(NULL AS VARCHAR)" for c in spec.columns}
    present = [index[c.name] for c in spec.columns if c.name in index]
    reader_errors = load_text_table(con, path, header, "_text", keep=present)

    # 1. + 2. in one pass over the text: parse every value once (inner select), then check
    # it (per-column problems), apply the file rules and the cross-file rules (known
    # patient, dates after birth), and hash the row as written for the duplicate check.
    values, problems = [], []
    for col in spec.columns:
        parts = column_parts(col, raw[col.name], header.decimal_comma)
        values += [f"{expr} AS {name}" for name, expr in parts.values]
        problems += parts.problems
    _file_units(con, spec, raw)
    derived, joins, extra = _rules(spec)
    if spec is not PATIENTS:
        joins.append("LEFT JOIN ingest.patients p ON p.patient_id = t.patient_id")
        extra.append(problem("patient_id", "t.raw_patient_id", "t.patient_id IS NOT NULL AND p.patient_id IS NULL",
                             quote("unknown patient_id (no accepted row in patients.csv)")))
        for date_col in spec.date_columns:
            extra.append(problem(date_col, f"t.raw_{date_col}", f"t.{date_col} < p.birth_date",
                                 quote("date before birth (the patient's birth_date)")))  # the reason never quotes the birth date
    kept = [f"t.{c}" for c in _checked_columns(spec)]
    row_hash = f"hash({', '.join(f't.raw_{c.name}' for c in spec.columns)})"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _checked AS
            SELECT t._line, {', '.join(kept + derived)},
                   {problem_list(problems + extra)} AS _problems, {row_hash} AS _hash
            FROM (SELECT _line, {', '.join(values)} FROM _text) t {' '.join(joins)}"""
    )

    _reject_exact_duplicates(con, [raw[c.name] for c in spec.columns if c.name in index])
    drop_text_table(con, "_text")  # the text is no longer needed: free its memory now
    con.execute("DROP TABLE IF EXISTS _read")

    # 3. of two otherwise valid rows with the same business key, the later is rejected
    if spec.key:
        keys = ", ".join(spec.key)
        first = f"first_value(_line) OVER (PARTITION BY {keys}, _problems IS NULL ORDER BY _line)"
        con.execute(
            f"""UPDATE _checked SET _problems = [{{'field': {quote(spec.key[-1])}, 'value': raw_{spec.key[-1]},
                   'reason': 'conflicting row for the same {keys} as line ' || k.first_line}}]
                FROM (SELECT _line AS line, {first} AS first_line FROM _checked) k
                WHERE _checked._line = k.line AND _problems IS NULL AND k.first_line <> k.line"""
        )

    if spec is CYCLES:
        _reject_cycles_out_of_date_order(con)

    # 4. split: problems -> audit, the rest -> ingest.<file> (for the entity's later files,
    # after checking them against the rows already accepted from its earlier files)
    # patient_key: the HMAC for patients; for the other files the accepted patient's key,
    # looked up again here rather than carried (64 characters a row) through _checked.
    outputs = ", ".join(f"c.{o}" for o in _output_columns(spec))
    out = f"""SELECT {hmac_sql('c.patient_id', key) if spec is PATIENTS else 'p.patient_key'} AS patient_key,
                     c.patient_id, {outputs},
                     c._line AS source_row, {quote(path.name)} AS source_file,
                     CAST({file_id} AS BIGINT) * {RECORDS_PER_FILE} + c._line AS record_id"""
    accepted_rows = "FROM _checked c" + ("" if spec is PATIENTS else
                                         " LEFT JOIN ingest.patients p ON p.patient_id = c.patient_id")
    accepted_rows += " WHERE c._problems IS NULL"
    if _exists(con, "ingest", spec.name):
        con.execute(f"CREATE OR REPLACE TEMP TABLE _out AS {out}, c._line {accepted_rows}")
        _reject_against_earlier_files(con, spec)
        con.execute("DELETE FROM _out WHERE _line IN (SELECT _line FROM _checked WHERE _problems IS NOT NULL)")
        con.execute(f"INSERT INTO ingest.{spec.name} BY NAME SELECT * EXCLUDE (_line) FROM _out")
    else:
        # the entity's first file: straight into a new table, no intermediate copy
        con.execute(f"CREATE TABLE ingest.{spec.name} AS {out} {accepted_rows}")

    con.execute(
        f"""INSERT INTO audit.rejected_rows
            SELECT {quote(path.name)}, _line, patient_id, p.field, p.value, p.reason
            FROM (SELECT _line, patient_id, unnest(_problems) AS p FROM _checked WHERE _problems IS NOT NULL)
            ORDER BY _line"""
    )
    # An unreadable row keeps its line, the field where reading stopped and DuckDB's reason
    # (a fixed text with counts), never the line as written: it can hold a name and a birth date.
    for line, column, error_type, message in reader_errors:
        field = header.normalised[int(column[1:])] if column and column.startswith("c") else None
        con.execute(
            "INSERT INTO audit.rejected_rows VALUES (?, ?, NULL, ?, NULL, ?)",
            [path.name, line, field, f"unreadable row ({error_type.lower()}): {message}"],
        )
    accepted, rejected = con.execute(
        "SELECT count(*) FILTER (_problems IS NULL), count(*) FILTER (_problems IS NOT NULL) FROM _checked"
    ).fetchone()
    rejected += len(reader_errors)
    summary = FileSummary(path.name, accepted + rejected, accepted, rejected)
    now = datetime.now(timezone.utc)
    con.execute(
        "INSERT INTO audit.load_summary VALUES (?, ?, ?, ?, ?, ?)",
        [summary.source_file, summary.rows_read, summary.rows_accepted, summary.rows_rejected,
         now, ", ".join(ignored) or None],
    )
    for table in ("_checked", "_out", "_repeated", "_file_units", "_reader_errors", "_reader_scans"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return _Loaded(summary.source_file, summary.rows_read, summary.rows_accepted, summary.rows_rejected, file_id, now)


def _reject_cycles_out_of_date_order(con: duckdb.DuckDBPyConnection) -> None:
    """A patient's cycle numbers must rise with the administration dates: of cycle 1 dated
    after cycle 2, which is wrong, the number or the date, cannot be told from the file, and
    cumulative activity, intervals and "after the last cycle" windows depend on the order. So
    both rows are rejected (with rows accepted from earlier files as the other side), to be
    fixed at the source. Same-day cycles are not compared."""
    earlier = ("UNION ALL SELECT false, NULL, patient_id, cycle_number, administration_date FROM ingest.cycles"
               if _exists(con, "ingest", "cycles") else "")
    con.execute(
        f"""UPDATE _checked SET _problems = [{{'field': 'cycle_number', 'value': _checked.raw_cycle_number,
               'reason': 'cycle numbers out of date order: cycle ' || _checked.cycle_number || ' is dated '
                         || CASE WHEN o.higher_before IS NOT NULL THEN 'after cycle ' || o.higher_before
                                 ELSE 'before cycle ' || o.lower_after END
                         || ': fix the cycle number or the date at the source'}}]
            FROM (
                SELECT * FROM (
                    SELECT new, _line,
                           -- a higher-numbered cycle dated before this one / a lower one dated after it
                           CASE WHEN max(cycle_number) OVER before > cycle_number
                                THEN max(cycle_number) OVER before END AS higher_before,
                           CASE WHEN min(cycle_number) OVER after < cycle_number
                                THEN min(cycle_number) OVER after END AS lower_after
                    FROM (SELECT true AS new, _line, patient_id, cycle_number, administration_date
                          FROM _checked WHERE _problems IS NULL {earlier})
                    WINDOW before AS (PARTITION BY patient_id ORDER BY administration_date
                                      RANGE BETWEEN UNBOUNDED PRECEDING AND INTERVAL 1 DAY PRECEDING),
                           after AS (PARTITION BY patient_id ORDER BY administration_date
                                     RANGE BETWEEN INTERVAL 1 DAY FOLLOWING AND UNBOUNDED FOLLOWING)
                ) WHERE new AND (higher_before IS NOT NULL OR lower_after IS NOT NULL)
            ) o
            WHERE _checked._line = o._line"""
    )


def _reject_exact_duplicates(con: duckdb.DuckDBPyConnection, text_columns: list[str]) -> None:
    """Rows identical, as written, to an earlier row of the same file. Grouping millions of
    rows by all their text columns is slow; finding repeated 64-bit hashes of them (made in
    the checking pass) is not, and the few candidates it finds (usually none) are then
    compared column by column in the text table, so the result is exact."""
    # hashes seen more than once (each once per repeat): sorting the 64-bit hashes and
    # comparing neighbours is cheaper than a hash table of millions of distinct groups
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _repeated AS
           SELECT _hash FROM (SELECT _hash, lag(_hash) OVER (ORDER BY _hash) AS _previous FROM _checked)
           WHERE _hash = _previous"""
    )
    if not con.execute("SELECT count(*) FROM _repeated").fetchone()[0]:
        return
    same = " AND ".join(f"c.{col} IS NOT DISTINCT FROM f.{col}" for col in text_columns) or "true"
    con.execute(
        f"""UPDATE _checked SET _problems = list_append(coalesce(_problems, CAST([] AS {PROBLEM_TYPE}[])),
                   {{'field': '(whole row)', 'value': NULL, 'reason': 'exact duplicate of line ' || d.first_line}})
            FROM (
                WITH candidates AS (SELECT k._line, k._hash FROM _checked k SEMI JOIN _repeated r ON k._hash = r._hash),
                     written AS (SELECT x.* FROM _text x SEMI JOIN candidates h ON x._line = h._line)
                SELECT c._line, min(f._line) AS first_line
                FROM (SELECT w.*, first_value(w._line) OVER (PARTITION BY h._hash ORDER BY w._line) AS _first
                      FROM candidates h JOIN written w ON w._line = h._line) c
                JOIN written f ON f._line = c._first AND {same}
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
                WHERE _checked._line = m._line AND _problems IS NULL"""
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
    try:
        encoding = export_encoding()
    except ValueError as error:
        raise ExportFileError(str(error)) from None
    summaries = []
    for spec in files:
        paths = export_files(raw_dir, spec)
        if not paths:
            raise ExportFileError(f"{spec.filename}: file missing from export folder {raw_dir}")
        for path in paths:
            if only is None or path.name in only:
                summaries.append(_load_file(con, spec, path, key, run_id, encoding))
        if spec is PATIENTS and only is None and not any(s.rows_read for s in summaries):
            # other files may be empty (no metastases); an export without patients is a failed export
            raise ExportFileError(f"{spec.filename}: no data rows (only a header): check the export")
    record_similar_patient_ids(con)
    return summaries


# Two ids are "similar" when they are equal once upper-cased and stripped of the leading
# zeros of their numbers ('0012345' ~ '12345', 'bums-1' ~ 'BUMS-01').
SIMILAR_ID_FORM = r"upper(regexp_replace({id}, '(^|[^0-9])0+([0-9])', '\1\2', 'g'))"


def record_similar_patient_ids(con: duckdb.DuckDBPyConnection) -> None:
    """``audit.similar_patient_ids``: record numbers that differ only in case or leading zeros,
    among the accepted patients and the ids of rows rejected as unknown patients. Ids are
    matched exactly as written (trimmed, never case-folded: only the hospital knows whether
    'bums-1' is BUMS-1), so such pairs are two patients, or one patient's rows rejected, until a
    data manager fixes the source; the Data quality page lists them. Identifying (patient_id):
    not in the SQL console."""
    form = SIMILAR_ID_FORM.format(id="patient_id")
    con.execute(
        f"""CREATE OR REPLACE TABLE audit.similar_patient_ids AS
            WITH ids AS (
                SELECT patient_id, true AS accepted, 0 AS rejected FROM ingest.patients
                UNION ALL
                SELECT patient_id, false, 1 FROM audit.rejected_rows
                WHERE patient_id IS NOT NULL AND starts_with(reason, 'unknown patient_id')
            ),
            grouped AS (
                SELECT {form} AS similar_form, patient_id, bool_or(accepted) AS in_patients_csv,
                       sum(rejected)::BIGINT AS rows_rejected_as_unknown
                FROM ids GROUP BY ALL
            )
            SELECT * FROM grouped
            WHERE similar_form IN (SELECT similar_form FROM grouped GROUP BY 1 HAVING count(*) > 1)
            ORDER BY similar_form, patient_id"""
    )
