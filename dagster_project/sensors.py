"""Start a refresh when the export folder changes (a new or rewritten file)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg

from prrt import config, refresh_lock

from .jobs import refresh_job


def export_fingerprint(raw_dir: Path) -> str:
    """Names, sizes and modification times of the CSV files: cheap, and changes whenever
    the hospital system writes a new export."""
    digest = hashlib.sha256()
    for path in sorted(raw_dir.glob("*.csv")):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


@dg.sensor(job=refresh_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def new_export_sensor(context: dg.SensorEvaluationContext):
    raw_dir = config.raw_dir()
    if not raw_dir.is_dir():
        return dg.SkipReason(f"export folder {raw_dir} does not exist")
    fingerprint = export_fingerprint(raw_dir)
    if fingerprint == context.cursor:
        return dg.SkipReason("export folder unchanged")
    warehouse = config.warehouse_path()
    if (owner := refresh_lock.running(warehouse)) is not None:  # cursor kept: asked again next tick
        return dg.SkipReason(f"export changed, but another refresh of {warehouse} is running"
                             f" ({refresh_lock.describe(owner)})")
    context.update_cursor(fingerprint)
    return dg.RunRequest(run_key=fingerprint)
