import dagster as dg

from prrt import config, refresh_lock

from .jobs import refresh_job


@dg.schedule(
    name="nightly_refresh",
    job=refresh_job,
    cron_schedule="0 2 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Rebuild and publish the warehouse every night at 02:00 (skipped while another "
                "refresh of it runs: that one reads the same export)",
)
def nightly_refresh(context: dg.ScheduleEvaluationContext):
    warehouse = config.warehouse_path()
    if (owner := refresh_lock.running(warehouse)) is not None:
        return dg.SkipReason(f"another refresh of {warehouse} is running ({refresh_lock.describe(owner)})")
    return dg.RunRequest()
