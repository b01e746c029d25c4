"""Blocking asset checks beyond dbt's own tests (which dagster-dbt turns into checks)."""


import dagster as dg

from prrt.analytics.catalog import MEDIAN_CI_METHODS

from .assets.analytics import analytics_key
from .assets.publish import MARTS
from .resources import WarehouseResource


def _non_empty_check(schema: str, table: str, why: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey([schema, table]), name="not_empty", blocking=True,
                    description=f"{schema}.{table} has rows: {why}")
    def check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect(context.run.run_id, read_only=True) as con:
            rows = con.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()[0]
            why_empty = None if rows else _why_empty(con, f"{schema}.{table}")
        return dg.AssetCheckResult(passed=rows > 0, metadata={"rows": rows}, description=why_empty)

    return check


def _why_empty(con, table: str) -> str:
    """What a failed refresh says about an empty table. The build file, with its rejected rows,
    is removed when the run fails, so the evidence goes into the check's description: the
    export file of which no row was accepted (patients.csv first: when none of its rows is,
    every other file's rows are rejected as "unknown patient_id"), and its most frequent reason."""
    emptied = con.execute(
        "SELECT source_file, rows_read FROM audit.load_summary WHERE rows_accepted = 0"
        " ORDER BY NOT starts_with(source_file, 'patients'), source_file LIMIT 1"
    ).fetchone()
    if not emptied:
        return f"{table} has no rows"
    source_file, read = emptied
    top = con.execute(
        "SELECT field, reason, count(*) AS n, min(source_row) AS first_line FROM audit.rejected_rows"
        " WHERE source_file = ? GROUP BY ALL ORDER BY n DESC, first_line LIMIT 1", [source_file]
    ).fetchone()
    most = f"; most often field {top[0]}: {top[1]} ({top[2]} rows, first on line {top[3]})" if top else ""
    return f"{table} has no rows: all {read} rows of {source_file} were rejected{most}"


@dg.asset_check(asset=analytics_key("km_median"), name="overall_median_present", blocking=True,
                description="The whole-cohort overall-survival Kaplan-Meier row exists for each CI method")
def overall_median_present(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(context.run.run_id, read_only=True) as con:
        methods = con.execute(
            "SELECT count(DISTINCT ci_method) FROM analytics.km_median WHERE endpoint = 'OS' AND stratum_variable = 'all'"
        ).fetchone()[0]
    expected = len(MEDIAN_CI_METHODS)  # R survfit's three conf.types and SPSS's
    return dg.AssetCheckResult(passed=methods == expected, metadata={"ci_methods": methods})


NON_EMPTY_ANALYTICS = ("response_rates", "toxicity_summary")

checks = [
    *(_non_empty_check("marts", m, "an empty mart is never published") for m in MARTS),
    *(_non_empty_check("analytics", t, "the paper's headline results are never published empty")
      for t in NON_EMPTY_ANALYTICS),
    overall_median_present,
]
