"""Atomic publication of a freshly built warehouse file.

A refresh builds into its own DuckDB file beside the published one. Only when every
blocking check has passed is that file checkpointed and renamed over
``PRRT_WAREHOUSE`` with ``os.replace`` (atomic on POSIX within one file system).
Readers that have the old file open keep reading the old inode; new readers get the
new file; a refresh that fails or is killed never touches the published file.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path

import duckdb

from . import file_modes

BUILD_DIR_NAME = ".builds"
STALE_BUILD_SECONDS = 24 * 3600


def build_dir(warehouse: Path) -> Path:
    return warehouse.parent / BUILD_DIR_NAME


def build_path(warehouse: Path, run_id: str) -> Path:
    """The file a given run builds into: same file system as the warehouse, so the
    final rename is atomic."""
    return build_dir(warehouse) / f"{warehouse.stem}.{run_id}.duckdb"


def make_build_dir(warehouse: Path) -> Path:
    """``.builds/`` beside the warehouse, private (prrt/file_modes.py); the warehouse's folder
    too when missing, with the published file's policy."""
    if not warehouse.parent.exists():
        file_modes.make_dir(warehouse.parent, shared=True)
    return file_modes.make_dir(build_dir(warehouse))


def _build_files(warehouse: Path) -> re.Pattern:
    """Names of the files a refresh of ``warehouse`` leaves in ``.builds/``: run builds
    (``<stem>.<run id>.duckdb``), early copies (``<stem>.early-<pid>.duckdb``), their WAL and
    DuckDB's spill folder (``.tmp``) -- not those of another warehouse in the same folder."""
    return re.compile(rf"{re.escape(warehouse.stem)}\.[^.]+\.duckdb(\.wal|\.tmp)?")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_builds(warehouse: Path, older_than: float | None = None) -> list[Path]:
    """Remove every build file of ``warehouse`` (or those not modified for ``older_than``
    seconds); returns what was removed. Only call it without ``older_than`` while holding the
    refresh lock (prrt/refresh_lock.py): then no other refresh of ``warehouse`` is running, and
    every build file there is a leftover (a failed, killed or SIGKILLed run's)."""
    directory = build_dir(warehouse)
    if not directory.is_dir():
        return []
    pattern, now, removed = _build_files(warehouse), time.time(), []
    for old in directory.iterdir():
        if not pattern.fullmatch(old.name):
            continue
        try:
            if older_than is not None and now - old.lstat().st_mtime <= older_than:
                continue
        except FileNotFoundError:
            continue
        _remove(old)
        removed.append(old)
    return removed


def start_build(warehouse: Path, run_id: str) -> Path:
    """Fresh build file for this run. Leftovers of other runs were removed when the refresh
    took its lock (prrt/refresh_lock.py); a day-old one is removed here in any case."""
    make_build_dir(warehouse)
    remove_builds(warehouse, older_than=STALE_BUILD_SECONDS)
    path = build_path(warehouse, run_id)
    discard(path)
    return path


# --- the copy an incremental refresh starts from, made early ----------------------------
# An incremental refresh builds on a copy of the published file (5.7 GB at a million patients:
# seconds of I/O). `prrt refresh` starts that copy in a thread before its slow imports (Dagster,
# dbt, the analytics stack: seconds of CPU), and the ingestion takes it over as its build file.
# Both run in one process, hence state in this module.

_early_copies: dict[Path, tuple[threading.Thread, Path, tuple[int, int, int], list[BaseException]]] = {}


def _identity(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def start_early_copy(warehouse: Path) -> None:
    """Copy the published ``warehouse`` into a spare build file, in the background."""
    warehouse = warehouse.resolve()
    directory = make_build_dir(warehouse)
    copy = directory / f"{warehouse.stem}.early-{os.getpid()}.duckdb"
    identity = _identity(warehouse)
    errors: list[BaseException] = []
    file_modes.open_private(copy, "wb").close()  # private from the start; copyfile keeps the mode

    def run() -> None:
        try:
            shutil.copyfile(warehouse, copy)
            if _identity(warehouse) != identity:  # published anew meanwhile: which file was copied?
                raise RuntimeError(f"{warehouse} was replaced during the copy")
        except BaseException as error:  # noqa: BLE001 - the copy is then made again, in the ingestion
            errors.append(error)

    thread = threading.Thread(target=run, name="early-warehouse-copy", daemon=True)
    thread.start()
    _early_copies[warehouse] = (thread, copy, identity, errors)


def take_early_copy(warehouse: Path, build: Path) -> bool:
    """Make the early copy of ``warehouse`` the file ``build`` (waiting for it to finish). False,
    and nothing left behind, when there is none or it is not a copy of the file published now."""
    entry = _early_copies.pop(warehouse.resolve(), None)
    if entry is None:
        return False
    thread, copy, identity, errors = entry
    thread.join()
    try:
        if not errors and _identity(warehouse) == identity:
            os.replace(copy, build)
            return True
    except OSError:  # e.g. the warehouse is gone: the caller copies (and reports) itself
        pass
    copy.unlink(missing_ok=True)
    return False


def discard_early_copy(warehouse: Path) -> None:
    """Remove an early copy nobody took (the refresh turned out full, or failed before)."""
    entry = _early_copies.pop(warehouse.resolve(), None)
    if entry is not None:
        entry[0].join()
        entry[1].unlink(missing_ok=True)


def dbt_target_path(warehouse: Path, run_id: str) -> Path:
    """dbt's target folder (compiled SQL, run_results.json, dbt.log) of one run, beside the
    builds: one per run so that overlapping runs never share one; folders of runs older than
    a day are removed (rather than one new folder per run piling up under dbt/target)."""
    make_build_dir(warehouse)
    root = file_modes.make_dir(build_dir(warehouse) / "dbt-target")
    now = time.time()
    for old in root.iterdir():
        if old.name != run_id and now - old.stat().st_mtime > STALE_BUILD_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
    return root / run_id


def dbt_parse_cache_dir(warehouse: Path) -> Path:
    """dbt's partial-parse file of the last run, kept so the next run need not re-parse the
    project (dagster_project/dbt_parse_cache.py)."""
    return build_dir(warehouse) / "dbt-parse"


def publish(build: Path, warehouse: Path) -> None:
    """Checkpoint ``build`` (so no WAL is left behind) and atomically replace ``warehouse``."""
    with duckdb.connect(str(build)) as con:
        con.execute("CHECKPOINT")
    file_modes.secure(build, shared=True)  # the mode readers will see, before anyone can open it
    with open(build, "rb") as handle:
        os.fsync(handle.fileno())
    if not warehouse.parent.exists():
        file_modes.make_dir(warehouse.parent, shared=True)
    os.replace(build, warehouse)
    directory = os.open(warehouse.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    file_modes.verify(warehouse)


def discard(build: Path) -> None:
    """Remove a build file, its WAL and DuckDB's spill folder."""
    for path in (build, build.with_name(build.name + ".wal"), build.with_name(build.name + ".tmp")):
        _remove(path)
