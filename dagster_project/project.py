"""The dbt project as Dagster sees it."""

from dagster_dbt import DbtProject

from prrt.config import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` the manifest is re-parsed on load; elsewhere `prrt prepare` (run
# by the set-up script, CI and `prrt refresh`) writes it. It is never committed.
dbt_project.prepare_if_dev()
