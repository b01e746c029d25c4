"""Raw export files -> schema ``ingest`` (accepted rows) and ``audit`` (the rest)."""


from pathlib import Path

import dagster as dg

from prrt import publish
from prrt.ingest import EXPORT_FILES, ExportFileError, load_export
from prrt.pseudonym import DEVELOPMENT_KEY, pseudonym_key

from ..resources import WarehouseResource

INGEST_GROUP = "ingest"
LOAD_SUMMARY = dg.AssetKey(["audit", "load_summary"])
REJECTED_ROWS = dg.AssetKey(["audit", "rejected_rows"])


def ingest_key(file_name: str) -> dg.AssetKey:
    return dg.AssetKey(["ingest", file_name])


@dg.multi_asset(
    name="ingest_raw_exports",
    group_name=INGEST_GROUP,
    specs=[
        *(
            dg.AssetSpec(ingest_key(spec.name), description=f"Accepted, typed rows of {spec.filename}",
                         kinds={"duckdb", "csv"})
            for spec in EXPORT_FILES
        ),
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
    """Read each export file with the contract's tolerance, validate, convert units
    and pseudonymise, all in DuckDB SQL, into a fresh build file for this run."""
    build = publish.start_build(warehouse.warehouse_path, context.run_id)
    context.log.info(f"Building into {build} from {warehouse.raw_dir}")
    key = pseudonym_key()
    if key == DEVELOPMENT_KEY.encode():
        context.log.warning("PRRT_PSEUDONYM_KEY is not set: patient_key uses the development key (demo data only)")
    try:
        with warehouse.connect(context.run_id) as con:
            summaries = load_export(con, Path(warehouse.raw_dir), key)
            problems = _reconcile(con)
    except ExportFileError as error:
        # A malformed file will not improve on retry: fail the run with the message.
        raise dg.Failure(description=str(error), allow_retries=False) from error

    by_file = {s.source_file: s for s in summaries}
    for spec in EXPORT_FILES:
        s = by_file[spec.filename]
        yield dg.MaterializeResult(
            asset_key=ingest_key(spec.name),
            metadata={"rows_read": s.rows_read, "rows_accepted": s.rows_accepted, "rows_rejected": s.rows_rejected,
                      "dagster/row_count": s.rows_accepted},
        )
    yield dg.MaterializeResult(asset_key=REJECTED_ROWS,
                               metadata={"dagster/row_count": sum(s.rows_rejected for s in summaries)})
    yield dg.MaterializeResult(asset_key=LOAD_SUMMARY, metadata={"files": len(summaries)})
    yield dg.AssetCheckResult(
        check_name="rows_reconcile", asset_key=LOAD_SUMMARY, passed=not problems,
        metadata={"mismatches": "; ".join(problems) or "none"},
    )


def _reconcile(con) -> list[str]:
    """Recount from the tables themselves, not from the loader's own counters."""
    problems = []
    for spec in EXPORT_FILES:
        read, accepted, rejected = con.execute(
            "SELECT rows_read, rows_accepted, rows_rejected FROM audit.load_summary WHERE source_file = ?",
            [spec.filename],
        ).fetchone()
        in_table = con.execute(f"SELECT count(*) FROM ingest.{spec.name}").fetchone()[0]
        rejected_lines = con.execute(
            "SELECT count(DISTINCT source_row) FROM audit.rejected_rows WHERE source_file = ?", [spec.filename]
        ).fetchone()[0]
        if not (read == accepted + rejected and in_table == accepted and rejected_lines == rejected):
            problems.append(
                f"{spec.filename}: read {read}, accepted {accepted} (table {in_table}), "
                f"rejected {rejected} (distinct lines {rejected_lines})"
            )
    return problems
