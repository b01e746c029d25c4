"""The Dagster definitions: one connected graph, a nightly schedule, an export sensor."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from dagster_project.definitions import defs
from dagster_project.sensors import new_export_sensor


def test_graph_runs_from_raw_file_to_published_warehouse():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for expected in ("ingest/patients", "ingest/labs", "marts/dim_patient", "marts/fct_toxicity",
                     "analytics/km_median", "warehouse/published"):
        assert expected in keys
    upstream = dg.AssetSelection.assets(dg.AssetKey(["warehouse", "published"])).upstream().resolve(graph)
    assert {dg.AssetKey(["ingest", "patients"]), dg.AssetKey(["marts", "dim_patient"])} <= upstream


def test_nightly_schedule_runs_by_default():
    schedule = defs.resolve_schedule_def("nightly_refresh")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "prrt_refresh"


def test_sensor_requests_a_run_when_the_export_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("PRRT_RAW_DIR", str(tmp_path))
    (tmp_path / "patients.csv").write_text("patient_id\n")
    context = dg.build_sensor_context(cursor=None)
    first = new_export_sensor(context)
    assert isinstance(first, dg.RunRequest)
    context = dg.build_sensor_context(cursor=context.cursor)
    assert isinstance(new_export_sensor(context), dg.SkipReason)
    (tmp_path / "labs.csv").write_text("patient_id\n")
    context = dg.build_sensor_context(cursor=context.cursor)
    assert isinstance(new_export_sensor(context), dg.RunRequest)


def test_blocking_checks_guard_publication():
    from dagster_project.assets.ingest import ingest_raw_exports
    from dagster_project.checks import checks

    specs = [*ingest_raw_exports.check_specs, *(spec for c in checks for spec in c.check_specs)]
    assert {s.name for s in specs} == {"rows_reconcile", "not_empty", "overall_median_present"}
    assert all(s.blocking for s in specs)
    # and publication sits downstream of every checked asset
    graph = defs.resolve_asset_graph()
    upstream = dg.AssetSelection.assets(dg.AssetKey(["warehouse", "published"])).upstream().resolve(graph)
    assert {s.asset_key for s in specs} <= upstream


def test_definitions_load_without_the_statistics_stack():
    """pandas, scipy and lifelines take seconds to import; `prrt refresh` imports them in the
    background while dbt runs (dagster_project/assets/dbt.py), which only helps while the definitions (and
    the ingestion and dbt steps) do not import them first."""
    code = ("import sys; import dagster_project.definitions; "
            "print(sorted(m for m in ('pandas', 'scipy', 'lifelines') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
