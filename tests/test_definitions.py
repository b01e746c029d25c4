"""The Dagster definitions: one connected graph, a nightly schedule, an export sensor."""

from __future__ import annotations

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
    schedule = defs.get_schedule_def("nightly_refresh")
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
    checks = {c.key.name: c for c in defs.resolve_all_asset_check_specs()}
    assert checks["rows_reconcile"].blocking
    assert checks["not_empty"].blocking
