"""Where things live: the raw export folder, the published warehouse, the dbt project.

Every path can be overridden by an environment variable (see CONTRACT section 1)."""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt"
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"
DEFAULT_RAW_DIR = REPO_ROOT / "raw" / "demo"
DEFAULT_WAREHOUSE = REPO_ROOT / "data" / "warehouse.duckdb"
# the dbt console script of this environment, whether or not its bin folder is on PATH
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))


def raw_dir() -> Path:
    """The export folder the nightly job reads (``PRRT_RAW_DIR``)."""
    return Path(os.environ.get("PRRT_RAW_DIR") or DEFAULT_RAW_DIR)


def warehouse_path() -> Path:
    """The published DuckDB file readers open (``PRRT_WAREHOUSE``)."""
    return Path(os.environ.get("PRRT_WAREHOUSE") or DEFAULT_WAREHOUSE)


def export_encoding() -> str | None:
    """The export's declared text encoding (``PRRT_EXPORT_ENCODING``, e.g. ``cp1252``,
    ``latin-1``, ``utf-16``), or None: UTF-8, with or without BOM (contract section 2)."""
    import codecs

    name = os.environ.get("PRRT_EXPORT_ENCODING", "").strip()
    if not name:
        return None
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        raise ValueError(f"PRRT_EXPORT_ENCODING={name!r} is not an encoding Python knows (e.g. cp1252, latin-1, "
                         "utf-16)") from None
    return None if canonical in ("utf-8", "utf-8-sig") else canonical


@cache
def dbt_var(name: str) -> object:
    """A var of the dbt project (``dbt/dbt_project.yml``): its rules' constants have one home
    there, and Python code that restates one (the app's months) reads it from there."""
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    return project["vars"][name]
