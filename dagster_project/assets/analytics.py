"""Survival analytics (lifelines) computed from the marts into schema ``analytics``."""


import dagster as dg

from prrt.analytics.tables import build_analytics_tables

from ..resources import WarehouseResource

ANALYTICS_TABLES = ("km_curve", "km_median", "logrank")
MART_INPUTS = (dg.AssetKey(["marts", "dim_patient"]), dg.AssetKey(["marts", "fct_toxicity"]))


def analytics_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["analytics", name])


@dg.multi_asset(
    name="survival_analytics",
    group_name="analytics",
    specs=[
        dg.AssetSpec(analytics_key(name), deps=list(MART_INPUTS), kinds={"duckdb", "python"})
        for name in ANALYTICS_TABLES
    ],
)
def survival_analytics(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Kaplan-Meier curves and medians (three CI methods, as R's survfit) and log-rank
    tests, overall and per stratifying variable of ``marts.dim_patient``."""
    with warehouse.connect(context.run_id) as con:
        patients = con.execute("SELECT * FROM marts.dim_patient WHERE os_months IS NOT NULL").df()
        toxicity = con.execute("SELECT * FROM marts.fct_toxicity").df()
        tables = build_analytics_tables(patients, toxicity)
        con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
        for name in ANALYTICS_TABLES:
            frame = tables[name]
            con.register("_frame", frame)
            con.execute(f"CREATE OR REPLACE TABLE analytics.{name} AS SELECT * FROM _frame")
            con.unregister("_frame")
            yield dg.MaterializeResult(asset_key=analytics_key(name), metadata={"dagster/row_count": len(frame)})
