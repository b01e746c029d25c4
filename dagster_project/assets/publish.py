"""Publication: the built file replaces PRRT_WAREHOUSE, atomically, once all else passed."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import duckdb

from prrt import publish

from ..resources import WarehouseResource
from .analytics import ANALYTICS_TABLES, analytics_key

PUBLISHED = dg.AssetKey(["warehouse", "published"])
MARTS = ("dim_patient", "fct_treatment_cycle", "fct_lab_result", "fct_toxicity", "fct_tumour_assessment", "fct_survival")

REFRESH_HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS audit.refresh_history (
    run_id VARCHAR NOT NULL,
    published_at TIMESTAMP WITH TIME ZONE NOT NULL,
    raw_dir VARCHAR NOT NULL,
    patients BIGINT,
    rows_read BIGINT,
    rows_rejected BIGINT
)"""


@dg.asset(
    key=PUBLISHED,
    group_name="publish",
    deps=[*(analytics_key(n) for n in ANALYTICS_TABLES), *(dg.AssetKey(["marts", m]) for m in MARTS)],
    kinds={"duckdb"},
)
def published_warehouse(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Appends this refresh to ``audit.refresh_history`` (carried over from the previous
    warehouse) and renames the build file over PRRT_WAREHOUSE. Runs only when every
    upstream step and blocking check succeeded."""
    build = warehouse.build_path(context.run_id)
    target = warehouse.warehouse_path
    with duckdb.connect(str(build)) as con:
        con.execute(REFRESH_HISTORY_DDL)
        _carry_history(con, target, context.log)
        con.execute(
            """INSERT INTO audit.refresh_history
               SELECT ?, ?, ?, (SELECT count(*) FROM marts.dim_patient),
                      sum(rows_read), sum(rows_rejected) FROM audit.load_summary""",
            [context.run_id, datetime.now(timezone.utc), warehouse.raw_dir],
        )
        patients = con.execute("SELECT count(*) FROM marts.dim_patient").fetchone()[0]
    publish.publish(build, target)
    context.log.info(f"Published {target} ({patients} patients)")
    return dg.MaterializeResult(metadata={"path": str(target), "patients": patients})


def _carry_history(con: duckdb.DuckDBPyConnection, previous: "object", log) -> None:
    if not previous.exists():
        return
    try:
        con.execute(f"ATTACH '{previous}' AS previous (READ_ONLY)")
    except duckdb.Error as error:  # e.g. someone holds it open read-write
        log.warning(f"Refresh history not carried over from {previous}: {error}")
        return
    try:
        has = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'previous'"
            " AND schema_name = 'audit' AND table_name = 'refresh_history'"
        ).fetchone()[0]
        if has:
            con.execute("INSERT INTO audit.refresh_history BY NAME SELECT * FROM previous.audit.refresh_history")
    finally:
        con.execute("DETACH previous")
