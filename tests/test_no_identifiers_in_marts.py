"""Names, record numbers and birth dates never reach the marts or analytics."""

from __future__ import annotations

import csv

from prrt.pseudonym import DEVELOPMENT_KEY, patient_key

from .conftest import DEMO_EXPORT

IDENTIFYING_COLUMNS = {"patient_id", "full_name", "birth_date"}


def test_no_identifying_columns(demo_db):
    columns = demo_db.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns"
        " WHERE table_schema IN ('marts', 'analytics')"
    ).fetchall()
    assert columns, "no mart columns found"
    assert [c for c in columns if c[2] in IDENTIFYING_COLUMNS] == []


def test_no_identifying_values(demo_db):
    with (DEMO_EXPORT / "patients.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    secrets = {r["patient_id"] for r in rows} | {r["full_name"] for r in rows} | {r["birth_date"] for r in rows}
    text_columns = demo_db.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns"
        " WHERE table_schema IN ('marts', 'analytics')"
    ).fetchall()
    for schema, table, col in text_columns:
        values = {str(v[0]) for v in demo_db.execute(f'SELECT DISTINCT "{col}" FROM {schema}.{table}').fetchall()}
        assert not values & secrets, f"{schema}.{table}.{col} holds identifying values"


def test_patient_key_is_the_documented_hmac(demo_db):
    with (DEMO_EXPORT / "patients.csv").open() as handle:
        ids = [r["patient_id"] for r in csv.DictReader(handle)]
    keys = set(c[0] for c in demo_db.execute("SELECT patient_key FROM marts.dim_patient").fetchall())
    assert keys == {patient_key(i, DEVELOPMENT_KEY.encode()) for i in ids}
