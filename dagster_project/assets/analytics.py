"""Outcome analytics (lifelines, scipy) computed from the marts into schema ``analytics``.

The statistics live in ``prrt.analytics`` (no Dagster there); this module only runs the
queries of ``ANALYTICS_QUERIES`` (each reads just what its computations need: the patient
columns with every endpoint's time and event from marts.fct_time_to_event, toxicity counts per term and grade, the lab nadir summarised per analyte), calls
``build_analytics_tables`` and writes one table per asset. Descriptions and column schemas
come from ``prrt.analytics.catalog``.

pandas and the statistics (``prrt.analytics.tables``: scipy, lifelines) are imported when the
asset runs, not with the definitions: the dbt step before this one imports them in a
thread while dbt runs in its own process (assets/dbt.py).
"""

# (no `from __future__ import annotations`: Dagster reads the asset's context annotation)
from typing import TYPE_CHECKING

import dagster as dg
import duckdb

from prrt.analytics.catalog import ANALYTICS_QUERIES, MARTS_READ, TABLES

from ..resources import WarehouseResource

if TYPE_CHECKING:
    import pandas as pd

ANALYTICS_TABLES = tuple(TABLES)
MART_INPUTS = tuple(dg.AssetKey(["marts", mart]) for mart in MARTS_READ)


def analytics_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["analytics", name])


def _column_schema(name: str, frame: "pd.DataFrame") -> dg.TableSchema:
    columns = TABLES[name].columns
    return dg.TableSchema(
        columns=[dg.TableColumn(c, str(frame[c].dtype), description=columns.get(c)) for c in frame.columns]
    )


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def read_frame(con: duckdb.DuckDBPyConnection, sql: str) -> "pd.DataFrame":
    """The rows of ``sql`` with text columns as pandas categoricals.

    DuckDB hands VARCHAR to pandas as one Python string per row (about 60 bytes each: tens
    of MB for the million rows of dim_patient); cast to an ENUM of their distinct values the
    same columns arrive as categorical codes.
    """
    import pandas as pd

    text = [name for name, type_, *_ in con.execute(f"DESCRIBE {sql}").fetchall() if type_ == "VARCHAR"]
    if text:
        found = con.execute(
            "SELECT " + ", ".join(f'list_sort(list(DISTINCT "{c}") FILTER (WHERE "{c}" IS NOT NULL))' for c in text)
            + f" FROM ({sql})"
        ).fetchone()
        casts = [f'CAST("{c}" AS ENUM({", ".join(_quote(v) for v in levels)})) AS "{c}"'
                 for c, levels in zip(text, found, strict=True) if levels]
        if casts:
            sql = f"SELECT * REPLACE ({', '.join(casts)}) FROM ({sql})"
    frame = con.execute(sql).df()
    for column in text:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].cat.as_unordered()
    return frame


# the inputs with a row per patient, read with text as categoricals; the others are aggregates of a
# few rows, which read_frame would compute twice (once for the text columns' values)
PER_PATIENT_INPUTS = frozenset({"dim_patient"})


def compute_analytics_tables(con: duckdb.DuckDBPyConnection) -> dict[str, "pd.DataFrame"]:
    """Every analytics table from the warehouse open on ``con`` (read only)."""
    from prrt.analytics.tables import build_analytics_tables

    return build_analytics_tables({
        name: read_frame(con, sql) if name in PER_PATIENT_INPUTS else con.execute(sql).df()
        for name, sql in ANALYTICS_QUERIES.items()
    })


def write_table(con: duckdb.DuckDBPyConnection, name: str, table: "pd.DataFrame") -> "pd.DataFrame":
    """``analytics.<name>`` replaced by ``table``; returns the frame as written."""
    # text columns as pandas strings, so an all-NULL one (e.g. no Cox notes) is VARCHAR, not "NULL"
    frame = table.astype({c: "string" for c, t in table.dtypes.items() if t == object})
    con.register("_frame", frame)
    try:
        con.execute(f"CREATE OR REPLACE TABLE analytics.{name} AS SELECT * FROM _frame")
    finally:
        con.unregister("_frame")
    return frame


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
    """Survival by endpoint (Kaplan-Meier, log-rank, survival at 12/24/36 months, Cox models;
    OS, PFS, TTP, DOR), median follow-up, response rates, performance status change, toxicity by
    grade and time to lab nadir, from ``marts.dim_patient`` with ``marts.fct_time_to_event``,
    ``marts.fct_toxicity`` (counts per term and grade) and ``marts.fct_lab_nadir``."""
    with warehouse.connect(context.run.run_id) as con:
        tables = compute_analytics_tables(con)
        con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
        for name in ANALYTICS_TABLES:
            frame = write_table(con, name, tables[name])
            yield dg.MaterializeResult(
                asset_key=analytics_key(name),
                metadata={"dagster/row_count": len(frame), "dagster/column_schema": _column_schema(name, frame)},
            )
