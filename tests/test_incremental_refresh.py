"""Incremental refresh: a new day's files are ingested alone, only the touched patients'
marts are rebuilt, and the result equals a full refresh of the same export."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pytest

from .conftest import DEMO_EXPORT, run_refresh

MARTS = ("dim_patient", "fct_treatment_cycle", "fct_lab_result", "fct_lab_nadir", "fct_toxicity",
         "fct_tumour_assessment", "fct_survival", "fct_time_to_event")
ANALYTICS = ("km_median", "logrank", "follow_up", "toxicity_summary", "response_rates", "lab_nadir")
# record_id numbers files in load order, which differs between the two paths by design
LOAD_ORDER_COLUMNS = {"record_id"}


def add_new_day(export: Path) -> None:
    with (export / "patients.csv").open() as handle:
        ids = [row["patient_id"] for row in csv.DictReader(handle)]
    (export / "labs_2020-04-28.csv").write_text(
        "patient_id,sample_date,analyte,value,unit,lln,uln\n"
        f"{ids[0]},2020-04-28,hemoglobin,9.1,g/dL,12,16\n"     # a new anaemia grade 2
        f"{ids[0]},2020-04-28,wbc,2500,/mm3,4000,11000\n"       # a new WBC decreased grade 2
        f"{ids[3]},2020-04-28,platelets,140,10^9/L,150,400\n"
    )
    (export / "tumour_assessments_2020-04-28.csv").write_text(
        "patient_id,assessment_date,modality,recist_response,sum_of_diameters_mm\n"
        f"{ids[3]},2020-04-28,ct,PR,30\n"
    )


def table(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> list[tuple]:
    columns = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?"
        " ORDER BY ordinal_position", [schema, name]).fetchall() if r[0] not in LOAD_ORDER_COLUMNS]
    select = ", ".join(f'"{c}"' for c in columns)
    return con.execute(f"SELECT {select} FROM {schema}.{name} ORDER BY ALL").fetchall()


@pytest.fixture(scope="module")
def refreshed(demo_warehouse, tmp_path_factory):
    root = tmp_path_factory.mktemp("incremental")
    export = root / "export"
    shutil.copytree(DEMO_EXPORT, export)
    incremental = root / "incremental" / "warehouse.duckdb"
    incremental.parent.mkdir()
    shutil.copy(demo_warehouse, incremental)  # yesterday's warehouse of the same base export
    # the copy's ingested_files fingerprints must match the export folder's files
    for name in (p.name for p in DEMO_EXPORT.glob("*.csv")):
        shutil.copystat(DEMO_EXPORT / name, export / name)
    add_new_day(export)
    result = run_refresh(export, incremental)
    assert result.returncode == 0, result.stdout + result.stderr
    full = root / "full" / "warehouse.duckdb"
    result = run_refresh(export, full)
    assert result.returncode == 0, result.stdout + result.stderr
    return export, incremental, full


def test_new_files_only_are_ingested_and_few_patients_rebuilt(refreshed):
    _, incremental, full = refreshed
    with duckdb.connect(str(incremental), read_only=True) as con:
        mode, reason, files, touched = con.execute(
            "SELECT mode, reason, files_loaded, touched_patients FROM audit.refresh_history"
            " ORDER BY published_at DESC LIMIT 1").fetchone()
        assert (mode, reason, files, touched) == ("incremental", "2 new file(s)", 2, 2)
        assert con.execute("SELECT count(*) FROM audit.ingested_files").fetchone()[0] == 9
        assert con.execute("SELECT count(*) FROM audit.refresh_history").fetchone()[0] >= 2
        # the build began as the copy of the published file `prrt refresh` started before its imports
        assert con.execute("SELECT build_started_from FROM audit.refresh_plan").fetchone()[0] == "early copy"
        assert list((incremental.parent / ".builds").glob("*.early-*")) == []
    # and `dbt build` ran in the dbt process it started then (prrt/prestarted_dbt.py); a full
    # refresh starts dbt when it gets there
    used = "dbt build: in the dbt process started with the refresh"
    assert used in (incremental.parent / ".builds" / "last-refresh.log").read_text()
    assert used not in (full.parent / ".builds" / "last-refresh.log").read_text()


def test_incremental_marts_equal_a_full_refresh(refreshed):
    _, incremental, full = refreshed
    with duckdb.connect(str(incremental), read_only=True) as inc, duckdb.connect(str(full), read_only=True) as ful:
        assert ful.execute("SELECT mode, build_started_from FROM audit.refresh_plan").fetchone() == ("full", "empty")
        for name in MARTS:
            assert table(inc, "marts", name) == table(ful, "marts", name), name
        for name in ANALYTICS:
            assert table(inc, "analytics", name) == table(ful, "analytics", name), name
        # and the new results are there: the new anaemia grade 2 moved Table 2
        assert inc.execute(
            "SELECT count(*) FROM marts.fct_toxicity WHERE ctcae_term = 'Anemia' AND worst_grade = 2"
        ).fetchone()[0] >= 3


def test_published_views_read_every_patient(refreshed):
    """The incremental build compiles its views for the touched patients alone
    (dbt/macros/refresh_scope.sql); the published file must hold them reading everyone."""
    _, incremental, full = refreshed
    with duckdb.connect(str(incremental), read_only=True) as inc, duckdb.connect(str(full), read_only=True) as ful:
        views = inc.execute(
            "SELECT schema_name, view_name, sql FROM duckdb_views()"
            " WHERE NOT internal AND schema_name IN ('staging', 'intermediate') ORDER BY ALL").fetchall()
        assert len(views) >= 19
        for schema, name, sql in views:
            assert "touched_patients" not in sql, f"{schema}.{name}"
            count = f"SELECT count(*) FROM {schema}.{name}"
            assert inc.execute(count).fetchone() == ful.execute(count).fetchone(), f"{schema}.{name}"


def test_a_changed_file_forces_a_full_refresh(refreshed, tmp_path):
    export, incremental, _ = refreshed
    from prrt.pseudonym import DEVELOPMENT_KEY
    from prrt.refresh_plan import plan_refresh

    assert plan_refresh(export, incremental, DEVELOPMENT_KEY.encode()).mode == "incremental"
    changed = tmp_path / "export"
    shutil.copytree(export, changed)
    for p in export.glob("*.csv"):
        shutil.copystat(p, changed / p.name)
    (changed / "labs.csv").touch()  # same content, new modification time: treated as changed
    plan = plan_refresh(changed, incremental, DEVELOPMENT_KEY.encode())
    assert (plan.mode, plan.reason) == ("full", "labs.csv changed since it was loaded")
    assert plan_refresh(export, incremental, b"another-key").mode == "full"


def test_next_incremental_parses_partially_and_keeps_views_whole(refreshed, tmp_path):
    """The night after: dbt reuses the previous run's parse (dagster_project/dbt_parse_cache.py),
    and the views put back after the build (assets/dbt.py) still read every patient."""
    export, incremental, _ = refreshed
    night = tmp_path / "export"
    shutil.copytree(export, night)  # copy2: the loaded files keep their fingerprints
    warehouse = tmp_path / "warehouse" / "warehouse.duckdb"
    shutil.copytree(incremental.parent, warehouse.parent)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        before = {v: con.execute(f"SELECT count(*) FROM {v}").fetchone()[0] for v in (
            "staging.stg_labs", "intermediate.int_lab_results_graded")}
        patient = con.execute("SELECT patient_key FROM marts.dim_patient LIMIT 1").fetchone()[0]
    with (export / "patients.csv").open() as handle:
        ids = [row["patient_id"] for row in csv.DictReader(handle)]
    (night / "labs_2020-04-29.csv").write_text(
        "patient_id,sample_date,analyte,value,unit,lln,uln\n"
        f"{ids[5]},2020-04-29,hemoglobin,11.0,g/dL,12,16\n"
        f"{ids[5]},2020-04-29,platelets,160,10^9/L,150,400\n"
    )
    result = run_refresh(night, warehouse)
    assert result.returncode == 0, result.stdout + result.stderr
    with duckdb.connect(str(warehouse), read_only=True) as con:
        run_id, mode = con.execute("SELECT run_id, mode FROM audit.refresh_plan").fetchone()
        assert mode == "incremental"
        assert con.execute("SELECT count(*) FROM staging.stg_labs").fetchone()[0] == before["staging.stg_labs"] + 2
        assert (con.execute("SELECT count(*) FROM intermediate.int_lab_results_graded").fetchone()[0]
                >= before["intermediate.int_lab_results_graded"])  # not the touched patients' rows alone
        for (sql,) in con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall():
            assert "touched_patients" not in sql
        assert con.execute("SELECT count(*) FROM marts.dim_patient WHERE patient_key = ?", [patient]).fetchone()[0] == 1
    log = (warehouse.parent / ".builds" / "dbt-target" / run_id / "dbt.log").read_text()
    assert "Unable to do partial parsing" not in log
    assert not (warehouse.parent / ".builds" / "dbt-target" / run_id / "views").exists()  # no second dbt run
