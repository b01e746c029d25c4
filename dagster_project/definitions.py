"""Everything Dagster loads: `dagster dev -m dagster_project.definitions`."""

import dagster as dg

from .assets.analytics import survival_analytics
from .assets.dbt import prrt_dbt_models
from .assets.ingest import ingest_raw_exports
from .assets.publish import published_warehouse
from .checks import checks
from .jobs import refresh_job
from .progress import progress_logger
from .resources import default_resources
from .schedules import nightly_refresh
from .sensors import new_export_sensor

defs = dg.Definitions(
    assets=[ingest_raw_exports, prrt_dbt_models, survival_analytics, published_warehouse],
    asset_checks=checks,
    jobs=[refresh_job],
    schedules=[nightly_refresh],
    sensors=[new_export_sensor],
    resources=default_resources(),
    loggers={"progress": progress_logger},
)
