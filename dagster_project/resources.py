"""Resources: where the export is read from and where the warehouse is published."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import subprocess
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource
from dagster_dbt.core import dbt_cli_invocation
from packaging import version

from prrt import child_process, config, file_modes, prestarted_dbt, publish, refresh_lock

from .project import dbt_project


class WarehouseResource(dg.ConfigurableResource):
    """The export folder of this run and the published warehouse file.

    Each run builds into its own file (``build_path``); only the publish asset
    touches ``warehouse``.

    For the whole run (set-up to teardown, once per run: the job's executor is in-process) the
    resource holds the warehouse's refresh lock, so a run the daemon launches (schedule, sensor)
    cannot overlap another refresh (it fails at once, naming the running one), and runs with the
    umask 077 of prrt/file_modes.py. At teardown a build file still there -- the run
    failed or was interrupted before publishing -- is removed (prrt/refresh_lock.py)."""

    raw_dir: str
    warehouse: str
    full_refresh: bool = False  # rebuild from the whole export even when only files were added
    # the public development key outside the bundled demo export (synthetic test data only)
    allow_development_key: bool = False

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse).resolve()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        file_modes.policy()  # a PRRT_FILE_GROUP that does not exist fails the run now, not at publication
        file_modes.restrict_umask()
        refresh_lock.acquire(self.warehouse_path)  # re-entrant: `prrt refresh` took it already

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        try:
            if context.run is not None:
                publish.discard(self.build_path(context.run.run_id))  # published: nothing there any more
        finally:
            refresh_lock.release(self.warehouse_path)

    def refresh_mode(self, run_id: str) -> str:
        """'full' or 'incremental', as the ingestion step planned it for this run."""
        with self.connect(run_id, read_only=True) as con:
            return con.execute("SELECT mode FROM audit.refresh_plan").fetchone()[0]

    def build_path(self, run_id: str) -> Path:
        return publish.build_path(self.warehouse_path, run_id)

    def dbt_target_path(self, run_id: str) -> Path:
        return publish.dbt_target_path(self.warehouse_path, run_id)

    @property
    def dbt_parse_cache_path(self) -> Path:
        return publish.dbt_parse_cache_dir(self.warehouse_path)

    @contextlib.contextmanager
    def connect(self, run_id: str, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        # the same memory ceiling as dbt's profile: DuckDB spills to disk beyond it
        memory_limit = os.environ.get("PRRT_DUCKDB_MEMORY_LIMIT", "3GB")
        con = duckdb.connect(str(self.build_path(run_id)), read_only=read_only, config={"memory_limit": memory_limit})
        if not read_only:
            file_modes.secure(self.build_path(run_id))  # DuckDB created it with the umask: to be sure
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


DBT_EXECUTABLE = config.DBT_EXECUTABLE


class PrrtDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without two fixed costs of every ``dbt.cli`` call that a refresh
    never uses (several seconds each, most of an incremental refresh's dbt overhead):

    - the dbt version, which it learns by running ``dbt --version`` (a whole dbt start-up):
      for this environment's own dbt it is the installed dbt-core's;
    - an in-process dbt adapter (profile, project and every macro loaded), used only by
      ``fetch_row_counts``/``fetch_column_metadata``, which these assets do not call; without
      it dagster-dbt carries on as when creating it fails."""

    @cached_property
    def _cli_version(self) -> version.Version:
        if self.dbt_executable == DBT_EXECUTABLE:
            return version.parse(importlib.metadata.version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


class _SubprocessForDbt:
    """The ``subprocess`` that dagster-dbt starts dbt with. Its ``Popen`` hands the command to
    the dbt process ``prrt refresh`` started ahead (prrt/prestarted_dbt.py) when there is one,
    and has dbt killed when the refresh process ends, however it ends (prrt/child_process.py):
    a killed refresh must not leave dbt running against the build file."""

    def __getattr__(self, name: str):
        return getattr(subprocess, name)

    @staticmethod
    def Popen(args, **kwargs) -> subprocess.Popen:  # noqa: N802 - stands in for subprocess.Popen
        return prestarted_dbt.take(args, kwargs) or child_process.Popen(args, **kwargs)


# dagster-dbt 0.29 calls ``subprocess.Popen`` of this module (DbtCliInvocation.run), with no
# way to pass a preexec_fn: it gets ours (tests/test_killed_refresh_stops_dbt.py checks it).
dbt_cli_invocation.subprocess = _SubprocessForDbt()


def default_resources() -> dict[str, object]:
    return {
        "warehouse": WarehouseResource(
            raw_dir=str(config.raw_dir()), warehouse=str(config.warehouse_path()),
            full_refresh=os.environ.get("PRRT_FULL_REFRESH", "") == "1",
        ),
        "dbt": PrrtDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
    }
