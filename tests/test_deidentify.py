"""`prrt deidentify`: a copy for outside the department, with new keys and shifted or coarsened dates."""

from __future__ import annotations

import re
import stat

import duckdb
import pytest

from prrt.deidentify import _age_band_sql, deidentify

from .privacy_scan import find_secrets

NOT_COPIED = {"ingest", "lineage", "staging", "intermediate", "audit"}


def _schemas(con):
    return {r[0] for r in con.execute("SELECT DISTINCT table_schema FROM information_schema.tables").fetchall()}


def _original_keys(demo_db) -> set[str]:
    return {r[0] for r in demo_db.execute("SELECT patient_key FROM marts.dim_patient").fetchall()}


def test_shifted_copy_keeps_intervals_and_moves_every_patient(demo_warehouse, demo_db, tmp_path):
    out = tmp_path / "shifted.duckdb"
    summary = deidentify(demo_warehouse, out, dates="shift", max_shift_days=30)
    assert summary.patients == 16 and stat.S_IMODE(out.stat().st_mode) == 0o600
    con = duckdb.connect(str(out), read_only=True)
    assert not _schemas(con) & NOT_COPIED and {"marts", "analytics", "reference"} <= _schemas(con)
    keys = [r[0] for r in con.execute("SELECT patient_key FROM marts.dim_patient").fetchall()]
    assert len(set(keys)) == 16 and all(re.fullmatch(r"P\d{6}", k) for k in keys)
    assert find_secrets(con, _original_keys(demo_db)) == []
    for table in ("dim_patient", "fct_lab_result", "fct_treatment_cycle", "fct_tumour_assessment", "fct_toxicity"):
        assert (con.execute(f"SELECT count(*) FROM marts.{table}").fetchone()
                == demo_db.execute(f"SELECT count(*) FROM marts.{table}").fetchone())
    # every date moved with its patient: days from the (shifted) first cycle are as before
    con.execute(f"ATTACH '{demo_warehouse}' AS source (READ_ONLY)")
    moved = con.execute(
        "SELECT count(*) FROM marts.fct_lab_result l JOIN marts.dim_patient p USING (patient_key)"
        " WHERE date_diff('day', p.first_cycle_date, l.sample_date) IS DISTINCT FROM l.days_from_first_cycle"
    ).fetchone()[0]
    assert moved == 0
    # each patient (matched on what does not change) moved by 1-30 days, never 0
    signature = "sex, age_at_first_cycle, primary_site, n_cycles, cumulative_activity_gbq, os_months, os_event"
    shifts = con.execute(
        f"SELECT date_diff('day', s.first_cycle_date, c.first_cycle_date) FROM marts.dim_patient c"
        f" JOIN source.marts.dim_patient s USING ({signature}) WHERE s.first_cycle_date IS NOT NULL").fetchall()
    assert len(shifts) == 16 and all(1 <= abs(d) <= 30 for (d,) in shifts), shifts
    # survival is relative to the first cycle: the analytics are the warehouse's own
    query = "SELECT * FROM analytics.km_median ORDER BY ALL"
    assert con.execute(query.replace("analytics", "shifted.analytics")).fetchall() == demo_db.execute(query).fetchall()


def test_months_copy_has_no_dates(demo_warehouse, demo_db, tmp_path):
    out = tmp_path / "months.duckdb"
    deidentify(demo_warehouse, out, dates="months", age_band_years=5)
    con = duckdb.connect(str(out), read_only=True)
    types = {r[0] for r in con.execute(
        "SELECT data_type FROM information_schema.columns WHERE table_schema IN ('marts', 'analytics')").fetchall()}
    assert not {t for t in types if t == "DATE" or t.startswith("TIMESTAMP")}
    # sample_month = floor(days from the first cycle / 30.4375): day 30 is month 0, day 31 month 1, day -1 month -1
    wrong = con.execute(
        "SELECT count(*) FROM marts.fct_lab_result"
        " WHERE sample_month IS DISTINCT FROM floor(days_from_first_cycle / 30.4375)").fetchone()[0]
    assert wrong == 0
    assert con.execute("SELECT DISTINCT first_cycle_month FROM marts.dim_patient").fetchall() == [(0,)]
    bands = con.execute("SELECT DISTINCT age_band_at_first_cycle FROM marts.dim_patient").fetchall()
    assert all(re.fullmatch(r"\d{1,2}-\d{1,2}|90\+", b) for (b,) in bands)
    assert "age_at_first_cycle" not in {r[0] for r in con.execute("DESCRIBE marts.dim_patient").fetchall()}


def test_age_bands():
    ages = [0, 4, 5, 64, 85, 89, 90, 101, None]
    con = duckdb.connect()
    got = [r[0] for r in con.execute(f"SELECT {_age_band_sql('a', 5)} FROM unnest(?) WITH ORDINALITY t(a, i) ORDER BY i",
                                     [ages]).fetchall()]
    assert got == ["0-4", "0-4", "5-9", "60-64", "85-89", "85-89", "90+", "90+", None]
    got = [r[0] for r in con.execute(f"SELECT {_age_band_sql('a', 10)} FROM unnest([83, 91]) t(a)").fetchall()]
    assert got == ["80-89", "90+"]


def test_refuses_to_overwrite(demo_warehouse, tmp_path):
    out = tmp_path / "copy.duckdb"
    out.write_text("keep me")
    with pytest.raises(FileExistsError):
        deidentify(demo_warehouse, out)
    assert out.read_text() == "keep me"
