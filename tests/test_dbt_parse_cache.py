"""dbt's partial parsing survives from one refresh run to the next although each run has
its own target folder and build file (dagster_project/dbt_parse_cache.py)."""

from __future__ import annotations

import msgpack
import pytest

from dagster_project import dbt_parse_cache
from prrt.config import DBT_PROJECT_DIR


def profile_hash(monkeypatch, build: str) -> str:
    monkeypatch.setenv("PRRT_BUILD_DB", build)
    return dbt_parse_cache._profile_hash(dbt_parse_cache._connection_info(DBT_PROJECT_DIR, DBT_PROJECT_DIR, {}))


@pytest.fixture
def cached(tmp_path, monkeypatch):
    """A cache entry as run A (build file a) leaves it."""
    monkeypatch.setenv("PRRT_DUCKDB_MEMORY_LIMIT", "3GB")
    run_a = tmp_path / "target-a"
    run_a.mkdir()
    build_a = str(tmp_path / "warehouse.a.duckdb")
    state = {"profile_hash": {"name": "sha256", "checksum": profile_hash(monkeypatch, build_a)}}
    (run_a / dbt_parse_cache.PARTIAL_PARSE).write_bytes(msgpack.packb({"state_check": state, "nodes": {"x": 1}}))
    cache = tmp_path / "cache"
    dbt_parse_cache.store(run_a, cache, DBT_PROJECT_DIR, build_a, {})
    return cache


def test_next_run_gets_the_parse_with_its_own_build_path(cached, tmp_path, monkeypatch):
    build_b = str(tmp_path / "warehouse.b.duckdb")
    expected = profile_hash(monkeypatch, build_b)
    run_b = tmp_path / "target-b"
    outcome = dbt_parse_cache.seed(run_b, cached, DBT_PROJECT_DIR, DBT_PROJECT_DIR, {})
    assert outcome.startswith("seeded")
    data = msgpack.unpackb((run_b / dbt_parse_cache.PARTIAL_PARSE).read_bytes(), raw=False)
    assert data["state_check"]["profile_hash"]["checksum"] == expected
    assert data["nodes"] == {"x": 1}


def test_other_vars_or_other_settings_parse_in_full(cached, tmp_path, monkeypatch):
    monkeypatch.setenv("PRRT_BUILD_DB", str(tmp_path / "warehouse.b.duckdb"))
    other_vars = dbt_parse_cache.seed(tmp_path / "t1", cached, DBT_PROJECT_DIR, DBT_PROJECT_DIR,
                                      {"refresh_scope": "touched_patients"})
    assert "no cached parse" in other_vars and not (tmp_path / "t1").exists()
    monkeypatch.setenv("PRRT_DUCKDB_MEMORY_LIMIT", "1GB")  # a connection setting: dbt must see the change
    other_settings = dbt_parse_cache.seed(tmp_path / "t2", cached, DBT_PROJECT_DIR, DBT_PROJECT_DIR, {})
    assert "profile changed" in other_settings and not (tmp_path / "t2").exists()
    # another database name (a warehouse file named otherwise) is a profile change too
    monkeypatch.setenv("PRRT_DUCKDB_MEMORY_LIMIT", "3GB")
    monkeypatch.setenv("PRRT_BUILD_DB", str(tmp_path / "registry.b.duckdb"))
    assert "profile changed" in dbt_parse_cache.seed(tmp_path / "t3", cached, DBT_PROJECT_DIR, DBT_PROJECT_DIR, {})
    # and another checkout of the dbt project has its own entry
    assert "no cached parse" in dbt_parse_cache.seed(tmp_path / "t4", cached, tmp_path, DBT_PROJECT_DIR, {})


def test_a_full_refresh_leaves_a_parse_for_each_kind_of_run(demo_warehouse):
    """Its own, and one with the incremental vars, parsed alongside its build, so that even
    the first incremental refresh after it does not parse the whole project."""
    entries = list((demo_warehouse.parent / ".builds" / "dbt-parse").glob("partial_parse.*.msgpack"))
    assert len(entries) == 2


def test_no_model_or_macro_reads_the_profiles_path():
    """The cached parse is reused for another build file: sound only while parsing never
    renders the profile's path (dbt_parse_cache's docstring)."""
    import re

    sources = [DBT_PROJECT_DIR / "dbt_project.yml", *DBT_PROJECT_DIR.glob("models/**/*"),
               *DBT_PROJECT_DIR.glob("macros/**/*"), *DBT_PROJECT_DIR.glob("tests/**/*")]
    for path in (p for p in sources if p.is_file()):
        assert not re.search(r"target\s*(\.\s*path|\[\s*['\"]path)", path.read_text()), path
