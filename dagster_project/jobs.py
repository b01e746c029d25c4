"""The refresh job, shared by the nightly schedule, the export sensor and `prrt refresh`."""

import dagster as dg

# DuckDB allows one writer per file: the steps of a refresh run one after another.
refresh_job = dg.define_asset_job(
    "prrt_refresh",
    selection=dg.AssetSelection.all(),
    description="Raw export -> ingest -> dbt build -> analytics -> atomic publish",
    executor_def=dg.in_process_executor,
)
