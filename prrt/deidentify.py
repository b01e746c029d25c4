"""A de-identified copy of the warehouse, for data that leaves the department (``prrt deidentify``).

The published warehouse is pseudonymised, not anonymous: its marts keep exact dates
(treatment, samples, assessments, death) beside age and sex, which together can single a
patient out, and ``patient_key`` links every copy made with the same key. A copy for a
registry, a collaborator or a publication's supplement is made from it with:

- **new patient keys**: ``patient_key`` is replaced by a random ``P000001``-style number drawn
  for this copy only, so the copy links neither to the warehouse nor to another copy;
- **dates** (every DATE column of a table with ``patient_key``), one of:
  - ``shift``: each patient's dates move by one random number of days (1 to
    ``max_shift_days``, either direction, never 0), so intervals within a patient are kept
    exactly and the calendar is not;
  - ``months``: each date is replaced by whole months from the patient's first cycle
    (``floor(days / days_per_month)``, the dbt var), in a column named ``<name>_month``
    (``sample_date`` -> ``sample_month``); patients never treated get nulls;
- **age bands** (optional): ``age_at_first_cycle`` becomes ``age_band_at_first_cycle``
  ('60-64', ..., '90+' from 90 on, as HIPAA's safe harbour groups the oldest).

Only ``marts``, ``analytics`` and ``reference`` are copied: no ``ingest``, ``lineage``,
staging or audit table (file names, run ids, rejected values), so no record number, birth
date, name, file line or server path is in the copy. A date column in a table without
``patient_key`` stops the copy (fail closed: it could not be shifted with its patient).
The random draws are made with the operating system's entropy and kept nowhere.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np

from . import config

SCHEMAS: tuple[str, ...] = ("marts", "analytics", "reference")
DATE_METHODS: tuple[str, ...] = ("shift", "months")


@dataclass(frozen=True)
class CopySummary:
    path: Path
    patients: int
    tables: int
    dates: str


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _month_name(column: str) -> str:
    return (column[: -len("_date")] if column.endswith("_date") else column) + "_month"


def _age_band_sql(column: str, years: int) -> str:
    lower = f"(floor({column} / {years}) * {years})::INTEGER"
    return (f"CASE WHEN {column} IS NULL THEN NULL WHEN {column} >= 90 THEN '90+'"
            f" ELSE {lower} || '-' || least({lower} + {years - 1}, 89) END")


def deidentify(warehouse: Path, out: Path, *, dates: str = "shift", max_shift_days: int = 180,
               age_band_years: int | None = None) -> CopySummary:
    """Write the de-identified copy of ``warehouse`` to ``out`` (a new DuckDB file, mode 0600)."""
    if dates not in DATE_METHODS:
        raise ValueError(f"dates must be one of {', '.join(DATE_METHODS)}, not {dates!r}")
    if max_shift_days < 1:
        raise ValueError("max_shift_days must be at least 1")
    if age_band_years is not None and not 1 <= age_band_years <= 30:
        raise ValueError("age_band_years must be between 1 and 30")
    warehouse, out = Path(warehouse), Path(out)
    if not warehouse.is_file():
        raise FileNotFoundError(f"no warehouse at {warehouse}: run `prrt refresh` first")
    if out.exists():
        raise FileExistsError(f"{out} exists: choose a new file name")
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    previous = os.umask(0o077)  # DuckDB creates the file: 0600, as the warehouse's
    try:
        with duckdb.connect(str(partial)) as con:
            summary = _copy(con, warehouse, dates, max_shift_days, age_band_years)
        os.replace(partial, out)
    finally:
        os.umask(previous)
        for leftover in (partial, partial.with_name(partial.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return CopySummary(out, *summary)


def _copy(con: duckdb.DuckDBPyConnection, warehouse: Path, dates: str, max_shift_days: int,
          age_band_years: int | None) -> tuple[int, int, str]:
    con.execute("ATTACH ? AS source (READ_ONLY)", [str(warehouse)])
    keys = np.array([r[0] for r in con.execute(
        "SELECT patient_key FROM source.marts.dim_patient ORDER BY patient_key").fetchall()], dtype=object)
    rng = np.random.default_rng(secrets.randbits(128))
    n = len(keys)
    # shifts of 1..max days in either direction: never 0, which would keep a patient's real dates
    magnitude = rng.integers(1, max_shift_days + 1, size=n)
    shift = np.where(rng.integers(0, 2, size=n) == 1, magnitude, -magnitude)
    width = max(6, len(str(n)))
    new_keys = np.array([f"P{i:0{width}d}" for i in rng.permutation(n) + 1], dtype=object)
    con.register("_draws", {"patient_key": keys, "new_key": new_keys, "shift_days": shift.astype(np.int32)})
    con.execute(
        "CREATE TEMP TABLE _patients AS SELECT d.*, p.first_cycle_date FROM _draws d"
        " JOIN source.marts.dim_patient p USING (patient_key)")
    con.unregister("_draws")
    days_per_month = float(config.dbt_var("days_per_month"))

    relations = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'source'"
        " AND list_contains(?, schema_name)"
        " UNION ALL SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = 'source'"
        " AND NOT internal AND list_contains(?, schema_name) ORDER BY ALL",
        [list(SCHEMAS), list(SCHEMAS)],
    ).fetchall()
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA {_ident(schema)}")
    for schema, table in relations:
        columns = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'source'"
            " AND schema_name = ? AND table_name = ? ORDER BY column_index", [schema, table]).fetchall()
        names = {c for c, _ in columns}
        date_columns = [c for c, t in columns if t == "DATE" or t.startswith("TIMESTAMP")]
        if "patient_key" not in names:
            if date_columns:
                raise ValueError(f"{schema}.{table} has dates ({', '.join(date_columns)}) but no patient_key:"
                                 " they cannot be de-identified with their patient")
            con.execute(f"CREATE TABLE {_ident(schema)}.{_ident(table)} AS FROM source.{_ident(schema)}.{_ident(table)}")
            continue
        selected = []
        for column, data_type in columns:
            ref = f"t.{_ident(column)}"
            if column == "patient_key":
                selected.append("p.new_key AS patient_key")
            elif column in date_columns and dates == "shift":
                selected.append(f"CAST({ref} + to_days(p.shift_days) AS {data_type}) AS {_ident(column)}")
            elif column in date_columns:
                selected.append(f"CAST(floor(date_diff('day', p.first_cycle_date, CAST({ref} AS DATE))"
                                f" / {days_per_month!r}) AS INTEGER) AS {_ident(_month_name(column))}")
            elif column == "age_at_first_cycle" and age_band_years:
                selected.append(f"{_age_band_sql(ref, age_band_years)} AS age_band_at_first_cycle")
            else:
                selected.append(f"{ref} AS {_ident(column)}")
        con.execute(
            f"CREATE TABLE {_ident(schema)}.{_ident(table)} AS SELECT {', '.join(selected)}"
            f" FROM source.{_ident(schema)}.{_ident(table)} t JOIN _patients p USING (patient_key)"
            " ORDER BY ALL")
    method = (f"dates shifted per patient by 1-{max_shift_days} days" if dates == "shift"
              else f"dates as whole months from the first cycle (days / {days_per_month:g})")
    if age_band_years:
        method += f"; ages in {age_band_years}-year bands, 90+"
    con.execute("CREATE SCHEMA about")
    con.execute(
        "CREATE TABLE about.deidentification AS SELECT ? AS method, ? AS patients, ? AS created_at,"
        " (SELECT max(published_at) FROM source.audit.refresh_history) AS source_published_at,"
        " 'patient_key is a number drawn for this copy only; no record numbers, names, birth dates,"
        " file lines or audit tables' AS note",
        [method, n, datetime.now(timezone.utc)],
    )
    con.execute("DETACH source")
    return n, len(relations), method
