"""Resources: where the export is read from and where the warehouse is published."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource

from prrt import config, publish

from .project import dbt_project


class WarehouseResource(dg.ConfigurableResource):
    """The export folder of this run and the published warehouse file.

    Each run builds into its own file (``build_path``); only the publish asset
    touches ``warehouse``."""

    raw_dir: str
    warehouse: str
    full_refresh: bool = False  # rebuild from the whole export even when only files were added

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse).resolve()

    def refresh_mode(self, run_id: str) -> str:
        """'full' or 'incremental', as the ingestion step planned it for this run."""
        with self.connect(run_id, read_only=True) as con:
            return con.execute("SELECT mode FROM audit.refresh_plan").fetchone()[0]

    def build_path(self, run_id: str) -> Path:
        return publish.build_path(self.warehouse_path, run_id)

    def dbt_target_path(self, run_id: str) -> Path:
        return publish.dbt_target_path(self.warehouse_path, run_id)

    @contextlib.contextmanager
    def connect(self, run_id: str, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        # the same memory ceiling as dbt's profile: DuckDB spills to disk beyond it
        memory_limit = os.environ.get("PRRT_DUCKDB_MEMORY_LIMIT", "3GB")
        con = duckdb.connect(str(self.build_path(run_id)), read_only=read_only, config={"memory_limit": memory_limit})
        try:
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def dbt_env(self, run_id: str) -> Iterator[None]:
        """dbt runs in a subprocess that inherits the environment; its profile reads
        the file to build from PRRT_BUILD_DB (dbt/profiles.yml)."""
        previous = os.environ.get("PRRT_BUILD_DB")
        os.environ["PRRT_BUILD_DB"] = str(self.build_path(run_id))
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("PRRT_BUILD_DB", None)
            else:
                os.environ["PRRT_BUILD_DB"] = previous


def default_resources() -> dict[str, object]:
    return {
        "warehouse": WarehouseResource(
            raw_dir=str(config.raw_dir()), warehouse=str(config.warehouse_path()),
            full_refresh=os.environ.get("PRRT_FULL_REFRESH", "") == "1",
        ),
        # the dbt of this environment, whether or not .venv/bin is on PATH
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=str(Path(sys.executable).with_name("dbt"))),
    }
