"""Full or incremental? Deciding what a refresh must do from what was published before.

A nightly export usually only *adds* files (a day's labs, cycles, assessments). Then the
refresh starts from a copy of the published warehouse, ingests just the new files and
lets dbt rebuild the marts of the patients those rows touch. Anything else (a file
changed or removed, other rules: dbt models, seeds, ingestion code, pseudonym key; no
previous warehouse; ``--full``) means a full rebuild from the export folder.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from .config import DBT_PROJECT_DIR, REPO_ROOT
from .ingest import EXPORT_FILES
from .ingest.loader import export_files

RULE_SOURCES = (
    DBT_PROJECT_DIR / "dbt_project.yml",
    DBT_PROJECT_DIR / "models",
    DBT_PROJECT_DIR / "seeds",
    DBT_PROJECT_DIR / "macros",
    REPO_ROOT / "prrt" / "ingest",
)


@dataclass(frozen=True)
class RefreshPlan:
    mode: str  # "full" | "incremental"
    reason: str
    rules_fingerprint: str
    new_files: tuple[str, ...] = field(default=())  # incremental: the files to ingest


def _digest(sources) -> "hashlib._Hash":
    digest = hashlib.sha256()
    for source in sources:
        paths = sorted(source.rglob("*")) if source.is_dir() else [source]
        for path in paths:
            if path.is_file() and path.suffix in {".sql", ".yml", ".csv", ".py", ".md"}:
                digest.update(str(path.relative_to(REPO_ROOT)).encode())
                digest.update(path.read_bytes())
    return digest


def dbt_fingerprint() -> str:
    """Changes whenever the dbt project does (models, seeds, macros, tests, settings)."""
    return _digest([*(s for s in RULE_SOURCES if s.is_relative_to(DBT_PROJECT_DIR)), DBT_PROJECT_DIR / "tests",
                    DBT_PROJECT_DIR / "profiles.yml"]).hexdigest()


def rules_fingerprint(key: bytes) -> str:
    """Changes whenever a rule that shapes the warehouse changes, including the key
    (only an HMAC of it is kept, never the key)."""
    digest = _digest(RULE_SOURCES)
    digest.update(hmac.new(key, b"prrt-rules-fingerprint", hashlib.sha256).digest())
    return digest.hexdigest()


def current_files(raw_dir: Path) -> dict[str, tuple[int, int]]:
    """name -> (size, mtime_ns) of every export file in the folder."""
    files = {}
    for spec in EXPORT_FILES:
        for path in export_files(raw_dir, spec):
            stat = path.stat()
            files[path.name] = (stat.st_size, stat.st_mtime_ns)
    return files


def plan_refresh(raw_dir: Path, previous: Path, key: bytes, *, force_full: bool = False) -> RefreshPlan:
    fingerprint = rules_fingerprint(key)

    def full(reason: str) -> RefreshPlan:
        return RefreshPlan("full", reason, fingerprint)

    if force_full:
        return full("full refresh requested")
    if not previous.exists():
        return full("no previous warehouse")
    try:
        with duckdb.connect(str(previous), read_only=True) as con:
            last = con.execute(
                "SELECT rules_fingerprint FROM audit.refresh_history ORDER BY published_at DESC LIMIT 1"
            ).fetchone()
            ingested = {
                name: (size, mtime)
                for name, size, mtime in con.execute(
                    "SELECT source_file, size_bytes, modified_ns FROM audit.ingested_files"
                ).fetchall()
            }
    except duckdb.Error as error:
        return full(f"previous warehouse unreadable for an incremental refresh ({type(error).__name__})")
    if last is None or last[0] != fingerprint:
        return full("rules changed since the last refresh (dbt models, seeds, ingestion or key)")
    now = current_files(raw_dir)
    for name, fingerprint_then in ingested.items():
        if name not in now:
            return full(f"{name} was removed from the export folder")
        if now[name] != fingerprint_then:
            return full(f"{name} changed since it was loaded")
    new = tuple(sorted(set(now) - set(ingested)))
    return RefreshPlan("incremental", f"{len(new)} new file(s)" if new else "no new files", fingerprint, new)
