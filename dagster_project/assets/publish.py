"""Publication: the built file replaces PRRT_WAREHOUSE, atomically, once all else passed."""


from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb

from prrt import publish, stop_signal

from ..resources import WarehouseResource
from .analytics import ANALYTICS_TABLES, analytics_key
from .ingest import LOAD_SUMMARY, REJECTED_ROWS

PUBLISHED = dg.AssetKey(["warehouse", "published"])
MARTS = ("dim_patient", "fct_treatment_cycle", "fct_lab_result", "fct_lab_nadir", "fct_toxicity",
         "fct_tumour_assessment", "fct_survival", "fct_time_to_event")

CHECK_RESULTS_DDL = """
CREATE OR REPLACE TABLE audit.check_results (
    run_id VARCHAR NOT NULL,
    asset VARCHAR NOT NULL,
    check_name VARCHAR NOT NULL,
    passed BOOLEAN NOT NULL,
    severity VARCHAR,
    evaluated_at TIMESTAMP WITH TIME ZONE
)"""

RUN_LOG_DDL = """
CREATE TABLE IF NOT EXISTS audit.run_log (
    run_id VARCHAR NOT NULL,
    step VARCHAR NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE,
    finished_at TIMESTAMP WITH TIME ZONE,
    duration_seconds DOUBLE,
    row_count BIGINT  -- ingestion: rows read from this run's files; dbt: rows in the marts; analytics: rows written
)"""

REFRESH_HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS audit.refresh_history (
    run_id VARCHAR NOT NULL,
    published_at TIMESTAMP WITH TIME ZONE NOT NULL,
    raw_dir VARCHAR NOT NULL,
    mode VARCHAR,
    reason VARCHAR,
    rules_fingerprint VARCHAR,
    patients BIGINT,
    files_loaded BIGINT,
    rows_read BIGINT,
    rows_rejected BIGINT,
    touched_patients BIGINT,
    development_key BOOLEAN  -- patient_key used the public development key (demo or test data)
)"""


@dg.asset(
    key=PUBLISHED,
    group_name="publish",
    # the audit tables too: the warehouse publishes them, and their reconciliation check guards it
    deps=[*(analytics_key(n) for n in ANALYTICS_TABLES), *(dg.AssetKey(["marts", m]) for m in MARTS),
          LOAD_SUMMARY, REJECTED_ROWS],
    kinds={"duckdb"},
)
def published_warehouse(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Appends this refresh to ``audit.refresh_history`` (carried over from the previous
    warehouse) and renames the build file over PRRT_WAREHOUSE. Runs only when every
    upstream step and blocking check succeeded."""
    build = warehouse.build_path(context.run.run_id)
    target = warehouse.warehouse_path
    _refuse_if_stopped()
    with duckdb.connect(str(build)) as con:
        con.execute(REFRESH_HISTORY_DDL)
        con.execute("ALTER TABLE audit.refresh_history ADD COLUMN IF NOT EXISTS development_key BOOLEAN")  # older
        con.execute(RUN_LOG_DDL)
        mode = con.execute("SELECT mode FROM audit.refresh_plan").fetchone()[0]
        if mode == "full":  # an incremental build started from a copy that has the history
            _carry_history(con, target, context.log)
        _record_run(con, context)
        con.execute(
            """INSERT INTO audit.refresh_history BY NAME
               SELECT ? AS run_id, ? AS published_at, ? AS raw_dir, p.mode, p.reason, p.rules_fingerprint,
                      (SELECT count(*) FROM marts.dim_patient) AS patients,
                      (SELECT count(*) FROM audit.ingested_files WHERE run_id = ?) AS files_loaded,
                      (SELECT sum(rows_read) FROM audit.load_summary) AS rows_read,
                      (SELECT sum(rows_rejected) FROM audit.load_summary) AS rows_rejected,
                      (SELECT count(*) FROM ingest.touched_patients) AS touched_patients,
                      p.development_key
               FROM audit.refresh_plan p""",
            [context.run.run_id, datetime.now(timezone.utc), warehouse.raw_dir, context.run.run_id],
        )
        patients = con.execute("SELECT count(*) FROM marts.dim_patient").fetchone()[0]
    _refuse_if_stopped()
    publish.publish(build, target)
    context.log.info(f"Published {target} ({patients} patients)")
    return dg.MaterializeResult(metadata={"path": str(target), "patients": patients})


def _refuse_if_stopped() -> None:
    if stop_signal.requested():
        raise dg.Failure(description=stop_signal.STOPPED, allow_retries=False)


def _record_run(con: duckdb.DuckDBPyConnection, context: dg.AssetExecutionContext) -> None:
    """This run's check outcomes (dbt tests included) and step timings, from Dagster's event
    log, so the data-quality page and SQL users see what guarded this publication."""
    run_id = context.run.run_id
    checks = context.instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=100_000
    ).records
    con.execute(CHECK_RESULTS_DDL)
    rows = []
    for record in checks:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        rows.append((run_id, evaluation.asset_key.to_user_string(), evaluation.check_name, evaluation.passed,
                     evaluation.severity.value if evaluation.severity else None,
                     datetime.fromtimestamp(record.timestamp, timezone.utc)))
    if rows:
        con.executemany("INSERT INTO audit.check_results VALUES (?, ?, ?, ?, ?, ?)", rows)

    steps: dict[str, list] = {}
    for record in context.instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}, limit=100_000
    ).records:
        event = record.event_log_entry.dagster_event
        at = datetime.fromtimestamp(record.timestamp, timezone.utc)
        slot = steps.setdefault(event.step_key, [None, None])
        slot[0 if event.event_type == dg.DagsterEventType.STEP_START else 1] = at
    counts: dict[str, int] = {}
    for record in context.instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
    ).records:
        event = record.event_log_entry.dagster_event
        metadata = event.event_specific_data.materialization.metadata
        value = metadata.get("rows_read") or metadata.get("dagster/row_count")
        if value is not None:
            counts[event.step_key] = counts.get(event.step_key, 0) + int(value.value)
    marts_rows = con.execute(
        "SELECT sum(estimated_size) FROM duckdb_tables() WHERE schema_name = 'marts'").fetchone()[0]
    con.execute("ALTER TABLE audit.run_log ADD COLUMN IF NOT EXISTS row_count BIGINT")  # older warehouses
    con.executemany(
        "INSERT INTO audit.run_log BY NAME SELECT ? AS run_id, ? AS step, ? AS started_at, ? AS finished_at,"
        " ? AS duration_seconds, ? AS row_count",
        [(run_id, step, start, end, (end - start).total_seconds() if start and end else None,
          marts_rows if step == "prrt_dbt_models" else counts.get(step))
         for step, (start, end) in steps.items()],
    )


def _carry_history(con: duckdb.DuckDBPyConnection, previous: Path, log) -> None:
    if not previous.exists():
        return
    try:
        con.execute(f"ATTACH '{previous}' AS previous (READ_ONLY)")
    except duckdb.Error as error:  # e.g. someone holds it open read-write
        log.warning(f"Refresh history not carried over from {previous}: {error}")
        return
    try:
        has = {row[0] for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'previous' AND schema_name = 'audit'"
        ).fetchall()}
        for table in ("refresh_history", "run_log"):
            if table in has:
                con.execute(f"INSERT INTO audit.{table} BY NAME SELECT * FROM previous.audit.{table}")
    finally:
        con.execute("DETACH previous")
