"""Blocking asset checks beyond dbt's own tests (which dagster-dbt turns into checks)."""


import dagster as dg

from .assets.analytics import analytics_key
from .assets.publish import MARTS
from .resources import WarehouseResource


def _non_empty_check(schema: str, table: str, why: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey([schema, table]), name="not_empty", blocking=True,
                    description=f"{schema}.{table} has rows: {why}")
    def check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect(context.run.run_id, read_only=True) as con:
            rows = con.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()[0]
        return dg.AssetCheckResult(passed=rows > 0, metadata={"rows": rows})

    return check


@dg.asset_check(asset=analytics_key("km_median"), name="overall_median_present", blocking=True,
                description="The whole-cohort Kaplan-Meier row exists for each CI method")
def overall_median_present(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(context.run.run_id, read_only=True) as con:
        methods = con.execute(
            "SELECT count(DISTINCT ci_method) FROM analytics.km_median WHERE stratum_variable = 'all'"
        ).fetchone()[0]
    return dg.AssetCheckResult(passed=methods == 3, metadata={"ci_methods": methods})


NON_EMPTY_ANALYTICS = ("response_rates", "toxicity_summary")

checks = [
    *(_non_empty_check("marts", m, "an empty mart is never published") for m in MARTS),
    *(_non_empty_check("analytics", t, "the paper's headline results are never published empty")
      for t in NON_EMPTY_ANALYTICS),
    overall_median_present,
]
