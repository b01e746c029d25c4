"""Raw export files -> schema ``ingest`` (accepted rows) and ``audit`` (the rest)."""

import shutil
from pathlib import Path

import dagster as dg
import duckdb

from prrt import publish
from prrt.ingest import EXPORT_FILES, load_export
from prrt.pseudonym import (
    DEVELOPMENT_KEY_BANNER,
    PseudonymKeyError,
    check_key_allowed,
    is_development_key,
    pseudonym_key,
)
from prrt.refresh_failure import retry_can_help
from prrt.refresh_plan import plan_refresh

from ..resources import WarehouseResource

INGEST_GROUP = "ingest"
LOAD_SUMMARY = dg.AssetKey(["audit", "load_summary"])
REJECTED_ROWS = dg.AssetKey(["audit", "rejected_rows"])
TOUCHED_PATIENTS = dg.AssetKey(["ingest", "touched_patients"])


def ingest_key(file_name: str) -> dg.AssetKey:
    return dg.AssetKey(["ingest", file_name])


@dg.multi_asset(
    name="ingest_raw_exports",
    group_name=INGEST_GROUP,
    specs=[
        *(
            dg.AssetSpec(ingest_key(spec.name), description=f"Accepted, typed rows of {spec.name}*.csv",
                         kinds={"duckdb", "csv"})
            for spec in EXPORT_FILES
        ),
        dg.AssetSpec(TOUCHED_PATIENTS, description="Patients with rows new in this refresh: the marts "
                     "an incremental refresh rebuilds", kinds={"duckdb"}),
        dg.AssetSpec(REJECTED_ROWS, description="Every rejected raw row with file, line, field, value, reason",
                     kinds={"duckdb"}),
        dg.AssetSpec(LOAD_SUMMARY, description="Per file: rows read = accepted + rejected", kinds={"duckdb"}),
    ],
    check_specs=[
        dg.AssetCheckSpec("rows_reconcile", asset=LOAD_SUMMARY, blocking=True,
                          description="Per file, rows read = rows in ingest + distinct rejected lines"),
    ],
    retry_policy=dg.RetryPolicy(max_retries=1, delay=2),
)
def ingest_raw_exports(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Plan the refresh (full, or incremental when the export only gained files), then read
    each file to load with the contract's tolerance, validate, convert units and
    pseudonymise, all in DuckDB SQL, into this run's build file."""
    raw_dir = Path(warehouse.raw_dir)
    try:
        key = pseudonym_key()
        check_key_allowed(key, raw_dir, warehouse.allow_development_key)
    except PseudonymKeyError as error:  # a configuration problem: retrying cannot help
        raise dg.Failure(description=str(error), allow_retries=False) from None
    development_key = is_development_key(key)
    if development_key:
        context.log.warning(DEVELOPMENT_KEY_BANNER)
    plan = plan_refresh(raw_dir, warehouse.warehouse_path, key, force_full=warehouse.full_refresh)
    context.log.info(f"{plan.mode} refresh: {plan.reason}")
    build = publish.start_build(warehouse.warehouse_path, context.run.run_id)
    # an incremental refresh starts from the published file: the copy `prrt refresh` began early,
    # or a copy made now
    if plan.mode == "full":  # (an early copy, if planned incremental before: not needed after all)
        publish.discard_early_copy(warehouse.warehouse_path)
        started_from = "empty"
    elif publish.take_early_copy(warehouse.warehouse_path, build):
        started_from = "early copy"
    else:
        shutil.copyfile(warehouse.warehouse_path, build)
        started_from = "copy"
    try:
        with warehouse.connect(context.run.run_id) as con:
            summaries = load_export(
                con, raw_dir, key, run_id=context.run.run_id,
                only=set(plan.new_files) if plan.mode == "incremental" else None,
            )
            con.execute(
                "CREATE OR REPLACE TABLE audit.refresh_plan AS SELECT ? AS run_id, ? AS mode, ? AS reason,"
                " ? AS rules_fingerprint, ? AS build_started_from, ? AS development_key",
                [context.run.run_id, plan.mode, plan.reason, plan.rules_fingerprint, started_from, development_key],
            )
            touched = _record_touched_patients(con, context.run.run_id)
            problems = _reconcile(con)
    except Exception as error:
        # A malformed file, a full disk or a denied folder will not improve on retry: fail the run
        # at once (anything else is retried once, e.g. a file the export was still writing).
        if retry_can_help(error):
            raise
        raise dg.Failure(description=str(error), allow_retries=False) from error

    for spec in EXPORT_FILES:
        mine = [s for s in summaries if s.source_file.startswith(spec.name)]
        yield dg.MaterializeResult(
            asset_key=ingest_key(spec.name),
            metadata={"files_loaded": len(mine), "rows_read": sum(s.rows_read for s in mine),
                      "rows_accepted": sum(s.rows_accepted for s in mine),
                      "rows_rejected": sum(s.rows_rejected for s in mine)},
        )
    yield dg.MaterializeResult(asset_key=TOUCHED_PATIENTS, metadata={"patients": touched, "mode": plan.mode})
    yield dg.MaterializeResult(asset_key=REJECTED_ROWS,
                               metadata={"rows_rejected_this_run": sum(s.rows_rejected for s in summaries)})
    yield dg.MaterializeResult(asset_key=LOAD_SUMMARY, metadata={"files_loaded": len(summaries)})
    yield dg.AssetCheckResult(
        check_name="rows_reconcile", asset_key=LOAD_SUMMARY, passed=not problems,
        metadata={"mismatches": "; ".join(problems) or "none"},
    )


def _record_touched_patients(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    this_run = "SELECT source_file FROM audit.ingested_files WHERE run_id = ?"
    union = " UNION ".join(
        f"SELECT patient_key FROM ingest.{spec.name} WHERE source_file IN ({this_run})" for spec in EXPORT_FILES
    )
    con.execute(f"CREATE OR REPLACE TABLE ingest.touched_patients AS {union}", [run_id] * len(EXPORT_FILES))
    return con.execute("SELECT count(*) FROM ingest.touched_patients").fetchone()[0]


def _reconcile(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Recount every loaded file from the tables themselves, not from the loader's counters."""
    problems = []
    files = con.execute(
        """SELECT s.source_file, f.entity, s.rows_read, s.rows_accepted, s.rows_rejected
           FROM audit.load_summary s JOIN audit.ingested_files f USING (source_file)"""
    ).fetchall()
    for source_file, entity, read, accepted, rejected in files:
        in_table = con.execute(f"SELECT count(*) FROM ingest.{entity} WHERE source_file = ?", [source_file]).fetchone()[0]
        rejected_lines = con.execute(
            "SELECT count(DISTINCT source_row) FROM audit.rejected_rows WHERE source_file = ?", [source_file]
        ).fetchone()[0]
        if not (read == accepted + rejected and in_table == accepted and rejected_lines == rejected):
            problems.append(
                f"{source_file}: read {read}, accepted {accepted} (table {in_table}), "
                f"rejected {rejected} (distinct lines {rejected_lines})"
            )
    return problems
