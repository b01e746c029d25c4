"""A new day's export for an existing (clean) synthetic export: the nightly increment.

For a share of the patients alive at the export's end, one more monthly lab panel, and
for some of them one more cycle and one more tumour assessment, all dated ``day``,
written as ``labs_<day>.csv``, ``cycles_<day>.csv`` and ``tumour_assessments_<day>.csv``
beside the base files — what an incremental refresh then ingests alone. Pure DuckDB SQL
over the existing files: no Python per row, fine for a million-patient export.

It reads the base files as ``prrt synth`` writes them (ISO dates, commas, the contract's
column names); a ``--messy`` export, or a hospital's, is refused with the file that could
not be read.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import duckdb

from .synth import EXPECTED_REJECTIONS_FILE


class NewDayError(ValueError):
    """The export is not one this generator can extend (names the file)."""


def generate_new_day(export_dir: Path, day: date, share: float = 0.01, seed: int = 0) -> dict[str, int]:
    """Writes the day's files into ``export_dir``; returns rows per written file."""
    export_dir = Path(export_dir)
    if (export_dir / EXPECTED_REJECTIONS_FILE).exists():
        raise NewDayError(f"{export_dir}: written with `prrt synth --messy` ({EXPECTED_REJECTIONS_FILE} is there);"
                          " a new day is made for clean exports only")
    con = duckdb.connect()

    def csv(name: str) -> str:
        return f"read_csv('{export_dir / name}', header = true, all_varchar = true)"

    def run(source: str, sql: str) -> None:
        try:
            con.execute(sql)
        except duckdb.Error as error:
            raise NewDayError(
                f"{export_dir / source}: not readable as a clean `prrt synth` export (written without"
                f" --messy): {str(error).splitlines()[0]}") from error

    run("follow_up.csv", f"""CREATE TEMP TABLE chosen AS
        SELECT patient_id FROM {csv('follow_up.csv')}
        WHERE vital_status = 'alive' AND hash(patient_id || '{seed}') % 1000000 < {int(share * 1_000_000)}""")
    day_sql = f"DATE '{day.isoformat()}'"
    outputs = {  # written file -> (the base file it extends, its rows)
        f"labs_{day}.csv": ("labs.csv", f"""
            SELECT patient_id, {day_sql} AS sample_date, analyte,
                   arg_max(value, CAST(sample_date AS DATE)) AS value, arg_max(unit, CAST(sample_date AS DATE)) AS unit,
                   arg_max(lln, CAST(sample_date AS DATE)) AS lln, arg_max(uln, CAST(sample_date AS DATE)) AS uln
            FROM {csv('labs.csv')} JOIN chosen USING (patient_id)
            GROUP BY patient_id, analyte ORDER BY patient_id, analyte"""),
        # every other chosen patient gets another administration (up to 7 cycles)
        f"cycles_{day}.csv": ("cycles.csv", f"""
            SELECT patient_id, max(CAST(cycle_number AS INTEGER)) + 1 AS cycle_number,
                   {day_sql} AS administration_date, 7.4 AS activity, 'GBq' AS activity_unit,
                   'yes' AS amino_acid_infusion
            FROM {csv('cycles.csv')} JOIN chosen USING (patient_id)
            WHERE hash(patient_id) % 2 = 0
            GROUP BY patient_id HAVING max(CAST(cycle_number AS INTEGER)) < 7 ORDER BY patient_id"""),
        f"tumour_assessments_{day}.csv": ("tumour_assessments.csv", f"""
            SELECT patient_id, {day_sql} AS assessment_date, 'ct' AS modality,
                   arg_max(recist_response, CAST(assessment_date AS DATE)) AS recist_response,
                   arg_max(sum_of_diameters_mm, CAST(assessment_date AS DATE)) AS sum_of_diameters_mm
            FROM {csv('tumour_assessments.csv')} JOIN chosen USING (patient_id)
            WHERE hash(patient_id) % 3 = 0
            GROUP BY patient_id ORDER BY patient_id"""),
    }
    rows = {}
    # every file's rows first, then the files: a base file that cannot be read leaves no partial day
    for i, (source, sql) in enumerate(outputs.values()):
        run(source, f"CREATE TEMP TABLE day_{i} AS {sql}")
    # ... written under names no refresh reads (not <entity>*.csv), then renamed
    for i, name in enumerate(outputs):
        partial = export_dir / f".{name}.partial"
        con.execute(f"COPY day_{i} TO '{partial}' (HEADER, DELIMITER ',')")
        rows[name] = con.execute(f"SELECT count(*) FROM read_csv('{partial}', header = true)").fetchone()[0]
    for name in outputs:
        (export_dir / f".{name}.partial").replace(export_dir / name)
    con.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prrt synth-new-day", description=__doc__)
    parser.add_argument("export", type=Path, help="an export folder written by `prrt synth`")
    parser.add_argument("--day", type=date.fromisoformat, required=True, help="date of the new day's rows")
    parser.add_argument("--share", type=float, default=0.01, help="share of living patients with new rows")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        rows = generate_new_day(args.export, args.day, args.share, args.seed)
    except NewDayError as error:
        print(f"prrt synth-new-day: {error}", file=sys.stderr)
        return 2
    for name, n in rows.items():
        print(f"{name:40s} {n:>10,} rows")
    return 0
