"""The refresh job, shared by the nightly schedule, the export sensor and `prrt refresh`."""

import dagster as dg

REFRESH_TAG = "prrt/refresh"

# DuckDB allows one writer per file: the steps of a refresh run one after another.
refresh_job = dg.define_asset_job(
    "prrt_refresh",
    selection=dg.AssetSelection.all(),
    description="Raw export -> ingest -> dbt build -> analytics -> atomic publish",
    executor_def=dg.in_process_executor,
    # One refresh at a time: runs the daemon launches queue behind each other (dagster.yaml:
    # concurrency.runs.tag_concurrency_limits), and every run holds the warehouse's refresh lock
    # (prrt/refresh_lock.py, taken by the warehouse resource) whoever started it.
    tags={REFRESH_TAG: "warehouse"},
)
