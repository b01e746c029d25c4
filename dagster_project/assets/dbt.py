"""The dbt project (staging -> intermediate -> marts, seeds, dbt tests) as Dagster assets."""


import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from ..project import dbt_project
from ..resources import WarehouseResource


class PrrtDbtTranslator(DagsterDbtTranslator):
    """Asset keys are ``[schema, table]``, so a dbt source ``ingest.patients`` is the very
    asset the ingestion step materialises, and the graph runs raw file -> mart unbroken."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props["schema"]
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"


translator = PrrtDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=translator)
def prrt_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """`dbt build`: seeds, models and their data tests, in dependency order; a failing test
    fails the step, so nothing downstream (publication included) runs. In an incremental
    refresh only the patients in ``ingest.touched_patients`` are rebuilt and tested
    (dbt/macros/refresh_scope.sql)."""
    # dbt's unit tests pin the SQL logic, not the data: they run in CI (tests/test_dbt_project.py),
    # not in every nightly build, as dbt recommends.
    args = ["build", "--exclude", "resource_type:unit_test"]
    incremental = warehouse.refresh_mode(context.run_id) == "incremental"
    args += ["--vars", json.dumps(INCREMENTAL_VARS)] if incremental else ["--full-refresh"]
    target = warehouse.dbt_target_path(context.run_id)
    with warehouse.dbt_env(context.run_id):
        yield from dbt.cli(args, context=context, target_path=target).stream()
        if incremental:
            # The views were compiled to read the touched patients alone: recreate them as
            # published, reading every patient (no events: these assets were just reported).
            dbt.cli(["run", "--select", "config.materialized:view"], manifest=dbt_project.manifest_path,
                    target_path=target / "views").wait()


# dbt vars of an incremental refresh (see dbt/macros/refresh_scope.sql)
INCREMENTAL_VARS = {"refresh_scope": "touched_patients"}
