"""The dbt project (staging -> intermediate -> marts, seeds, dbt tests) as Dagster assets."""


import importlib
import json
import os
import signal
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from prrt import child_process, file_modes, stop_signal

from .. import dbt_parse_cache
from ..project import dbt_project
from ..resources import DBT_EXECUTABLE, WarehouseResource


class PrrtDbtTranslator(DagsterDbtTranslator):
    """Asset keys are ``[schema, table]``, so a dbt source ``ingest.patients`` is the very
    asset the ingestion step materialises, and the graph runs raw file -> mart unbroken."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props["schema"]
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"


translator = PrrtDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=translator)
def prrt_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """`dbt build`: seeds, models and their data tests, in dependency order; a failing test
    fails the step, so nothing downstream (publication included) runs. In an incremental
    refresh only the patients in ``ingest.touched_patients`` are rebuilt and tested
    (dbt/macros/refresh_scope.sql)."""
    # dbt's unit tests pin the SQL logic, not the data: they run in CI (tests/test_dbt_project.py),
    # not in every nightly build, as dbt recommends.
    args = ["build", "--exclude", "resource_type:unit_test"]
    incremental = warehouse.refresh_mode(context.run.run_id) == "incremental"
    cli_vars = INCREMENTAL_VARS if incremental else {}
    args += (["--vars", json.dumps(cli_vars), "--threads", str(INCREMENTAL_THREADS)] if incremental
             else ["--full-refresh"])
    target = warehouse.dbt_target_path(context.run.run_id)
    # An incremental build starts from a copy of the published warehouse, whose views read
    # every patient: keep their definitions to put back after the build (see below).
    published_views = _views(warehouse, context.run.run_id) if incremental else None
    importer = None
    with warehouse.dbt_env(context.run.run_id):
        _seed_parse(context, warehouse, target, cli_vars)
        # A full refresh also parses for the next nights' incremental refreshes (their --vars
        # are another parse-cache entry), alongside the build, so even the first one starts warm.
        warm = None if incremental else _start_incremental_parse(context, warehouse, target / "parse-incremental")
        try:
            build = dbt.cli(args, context=context, target_path=target)
            _private_parse_copy(target)
            # The analytics step that comes next needs pandas, scipy and lifelines (seconds of
            # imports): while dbt works in its own process, this one mostly waits, so import them
            # now -- once dbt has started (forking with a preexec_fn is unsafe while a thread runs).
            importer = _import_in_background("prrt.analytics.tables")
            yield from _stream_until_stopped(build)
        except BaseException:
            if warm is not None:
                warm[0].kill()
                warm[0].wait()
            raise
        finally:
            if importer is not None:  # not left half-way through C extensions if the process exits
                importer.join(timeout=120)
        dbt_parse_cache.store(target, warehouse.dbt_parse_cache_path, dbt_project.project_dir,
                              warehouse.build_path(context.run.run_id), cli_vars)
        if warm is not None:
            _finish_incremental_parse(context, warehouse, *warm)
        if incremental and not _restore_views(context, warehouse, published_views):
            # The slow way: dbt recompiles the views without the touched-patients filter
            # (no events: these assets were just reported).
            views_target = target / "views"
            _seed_parse(context, warehouse, views_target, {})
            views = dbt.cli(["run", "--select", "config.materialized:view"], manifest=dbt_project.manifest_path,
                            target_path=views_target)
            _private_parse_copy(views_target)
            views.wait()


def _stream_until_stopped(build):
    """dbt's events, stopping dbt at the next one once `prrt refresh` was asked to stop (a signal
    dagster-dbt's reading loop may swallow: prrt/stop_signal.py)."""
    for event in build.stream():
        yield event
        if stop_signal.requested():
            build.process.send_signal(signal.SIGINT)
            build.process.wait(timeout=build.termination_timeout_seconds)
            raise dg.Failure(description=stop_signal.STOPPED, allow_retries=False)


# dbt vars of an incremental refresh (see dbt/macros/refresh_scope.sql)
INCREMENTAL_VARS = {"refresh_scope": "touched_patients"}
# An incremental build is ~190 small nodes (mostly data tests on the touched patients), where
# dbt's own per-node Python work is a large share: two at a time overlap it with DuckDB's. A full
# build keeps profiles.yml's one thread: its large models already use every core and, two at a
# time, would share the one DuckDB memory limit.
INCREMENTAL_THREADS = 2


def _private_parse_copy(target: Path) -> None:
    """dagster-dbt copies dbt/target's partial-parse file into the run's target folder with
    ``shutil.copy``, which keeps its mode (0644): make it private as every file of a refresh."""
    parse = Path(target) / "partial_parse.msgpack"
    if parse.exists():
        file_modes.secure(parse)


def _import_in_background(module: str) -> threading.Thread:
    def run() -> None:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - the step that needs it imports it again and reports the error
            pass

    thread = threading.Thread(target=run, name=f"import {module}", daemon=True)
    thread.start()
    return thread


def _seed_parse(context, warehouse: WarehouseResource, target, cli_vars) -> None:
    outcome = dbt_parse_cache.seed(target, warehouse.dbt_parse_cache_path, dbt_project.project_dir,
                                   dbt_project.profiles_dir, cli_vars)
    context.log.info(f"dbt partial parsing: {outcome}")


def _start_incremental_parse(context, warehouse: WarehouseResource, target: Path):
    """`dbt parse` with the incremental vars, in the background (it does not open the database)."""
    try:
        _seed_parse(context, warehouse, target, INCREMENTAL_VARS)
        process = child_process.Popen(  # killed with the refresh, if it is
            [DBT_EXECUTABLE, "parse", "--quiet", "--vars", json.dumps(INCREMENTAL_VARS),
             "--project-dir", str(dbt_project.project_dir), "--profiles-dir", str(dbt_project.profiles_dir),
             "--target-path", str(target), "--log-path", str(target)],
            env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    except Exception as error:  # noqa: BLE001 - only the next night's start-up is at stake
        context.log.warning(f"dbt parse for incremental refreshes not started: {error}")
        return None
    return process, target, warehouse.build_path(context.run.run_id)


def _finish_incremental_parse(context, warehouse: WarehouseResource, process, target: Path, build: Path) -> None:
    try:
        if process.wait(timeout=600) == 0:
            dbt_parse_cache.store(target, warehouse.dbt_parse_cache_path, dbt_project.project_dir, build,
                                  INCREMENTAL_VARS)
        else:
            context.log.warning(f"dbt parse for incremental refreshes failed (exit {process.returncode})")
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        context.log.warning("dbt parse for incremental refreshes timed out")


_VIEWS = "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal"


def _views(warehouse: WarehouseResource, run_id: str) -> dict[tuple[str, str], str]:
    with warehouse.connect(run_id, read_only=True) as con:
        return {(schema, name): sql for schema, name, sql in con.execute(_VIEWS).fetchall()}


def _restore_views(context, warehouse: WarehouseResource, published: dict[tuple[str, str], str]) -> bool:
    """The incremental build compiled the views to read the touched patients alone. Put back
    the published definitions, which read every patient: they are what dbt would compile
    without the filter, as an incremental refresh only runs while the dbt project (models,
    macros, dbt_project.yml: the rules fingerprint) is the one that built the published
    warehouse (prrt/refresh_plan.py). DuckDB's own view SQL, as EXPORT DATABASE replays it.
    False, nothing changed, when the views are not the same set or look filtered."""
    with warehouse.connect(context.run.run_id) as con:
        built = {(schema, name) for schema, name, _ in con.execute(_VIEWS).fetchall()}
        usable = (built == set(published)
                  and all(sql.startswith("CREATE VIEW ") and "touched_patients" not in sql
                          for sql in published.values()))
        if not usable:
            context.log.warning("published view definitions unusable: dbt recreates the views")
            return False
        con.execute("BEGIN")
        try:
            for sql in published.values():
                con.execute("CREATE OR REPLACE VIEW " + sql.removeprefix("CREATE VIEW "))
            con.execute("COMMIT")
        except duckdb.Error as error:
            con.execute("ROLLBACK")
            context.log.warning(f"published view definitions failed ({error}): dbt recreates the views")
            return False
    context.log.info(f"{len(published)} views restored to read every patient")
    return True
