"""Outcome analytics (lifelines, scipy) computed from the marts into schema ``analytics``.

The statistics live in ``prrt.analytics`` (no Dagster there); this module only reads the
mart columns they need (``MART_COLUMNS``), calls ``build_analytics_tables`` and writes one
table per asset. Descriptions and column schemas come from ``prrt.analytics.catalog``.
"""


import dagster as dg
import pandas as pd

from prrt.analytics.catalog import MART_COLUMNS, TABLES
from prrt.analytics.tables import build_analytics_tables

from ..resources import WarehouseResource

ANALYTICS_TABLES = tuple(TABLES)
MART_INPUTS = tuple(dg.AssetKey(["marts", mart]) for mart in MART_COLUMNS)


def analytics_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["analytics", name])


def _column_schema(name: str, frame: pd.DataFrame) -> dg.TableSchema:
    columns = TABLES[name].columns
    return dg.TableSchema(
        columns=[dg.TableColumn(c, str(frame[c].dtype), description=columns.get(c)) for c in frame.columns]
    )


@dg.multi_asset(
    name="survival_analytics",
    group_name="analytics",
    specs=[
        dg.AssetSpec(analytics_key(name), deps=list(MART_INPUTS), kinds={"duckdb", "python"},
                     description=TABLES[name].markdown())
        for name in ANALYTICS_TABLES
    ],
)
def survival_analytics(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Survival (Kaplan-Meier, log-rank, survival at 12/24/36 months, Cox models), response
    rates, performance status change, toxicity by grade and time to lab nadir, from
    ``marts.dim_patient``, ``marts.fct_toxicity`` and ``marts.fct_lab_result``."""
    with warehouse.connect(context.run_id) as con:
        marts = {
            mart: con.execute(f"SELECT {', '.join(columns)} FROM marts.{mart}").df()
            for mart, columns in MART_COLUMNS.items()
        }
        tables = build_analytics_tables(marts)
        con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
        for name in ANALYTICS_TABLES:
            # text columns as pandas strings, so an all-NULL one (e.g. no Cox notes) is VARCHAR, not "NULL"
            frame = tables[name].astype({c: "string" for c, t in tables[name].dtypes.items() if t == object})
            con.register("_frame", frame)
            con.execute(f"CREATE OR REPLACE TABLE analytics.{name} AS SELECT * FROM _frame")
            con.unregister("_frame")
            yield dg.MaterializeResult(
                asset_key=analytics_key(name),
                metadata={"dagster/row_count": len(frame), "dagster/column_schema": _column_schema(name, frame)},
            )
