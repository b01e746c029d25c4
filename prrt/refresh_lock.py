"""One refresh of a warehouse at a time, and nothing of a failed or killed one left behind.

**The lock.** A refresh holds an exclusive ``fcntl.flock`` on ``.builds/<warehouse
name>.refresh.lock`` (beside the warehouse) for its whole run: ``prrt refresh`` from before its
early copy until it exits, a run the Dagster daemon launches (nightly schedule, export sensor)
from its resources' set-up to their teardown (``dagster_project/resources.py``). A second
refresh of the same warehouse does not wait: it stops at once, before touching anything, with
``another refresh of <warehouse> is running (pid N, started HH:MM); nothing was done``
(``prrt refresh`` exits 3). The kernel releases the lock when the holder ends, however it ends
(SIGKILL and the OOM killer included), so a stale lock cannot block the next night. The lock
file itself is never removed (removing a lock file others may have open breaks the lock); it
holds the holder's pid and start time, for the message only.

**No leftovers.** Holding the lock, a refresh removes every build file of its warehouse it finds
(``publish.remove_builds``): none can belong to a live refresh, so they are a SIGKILLed run's.
A failed run removes its own build file at once (resource teardown and the CLI's ``finally``),
and ``prrt refresh`` turns SIGTERM into the same interrupt as Ctrl-C, so it cleans up too.

**Logs.** ``prrt refresh`` writes its own log per run, ``.builds/<stem>.refresh-<time>-<pid>.log``,
with ``last-refresh.log`` a symlink to the latest; a new run removes its warehouse's older logs.

This module has no Dagster in it: the CLI, the resources, the schedule and the sensor call it.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import signal
import socket
import threading
import time
from datetime import datetime
from pathlib import Path

from . import file_modes, publish, stop_signal

LOCK_SUFFIX = ".refresh.lock"
LATEST_LOG = "last-refresh.log"
EXIT_BUSY = 3  # `prrt refresh`'s exit status when another refresh holds the lock


class RefreshRunning(RuntimeError):
    """Another process holds the refresh lock of this warehouse."""

    def __init__(self, warehouse: Path, owner: dict | None) -> None:
        self.warehouse, self.owner = warehouse, owner or {}
        super().__init__(f"another refresh of {warehouse} is running ({describe(self.owner)}); nothing was done")


def describe(owner: dict) -> str:
    pid = owner.get("pid", "?")
    started = owner.get("started")
    if not started:
        return f"pid {pid}"
    at = datetime.fromtimestamp(started)
    when = at.strftime("%H:%M") if at.date() == datetime.now().date() else at.strftime("%Y-%m-%d %H:%M")
    host = owner.get("host")
    return f"pid {pid}{'' if host in (None, socket.gethostname()) else ' on ' + host}, started {when}"


def lock_path(warehouse: Path) -> Path:
    return publish.build_dir(warehouse) / f"{warehouse.name}{LOCK_SUFFIX}"


# warehouse -> [open lock file descriptor, depth]: the CLI takes the lock, then the run's
# resources take it again in the same process (re-entrant; flock itself is not, per open file).
_held: dict[Path, list[int]] = {}
_guard = threading.Lock()


def _owner(fd: int) -> dict | None:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return None


def _holder(fd: int, patience: float = 1.0) -> dict | None:
    """The lock holder's record, waiting briefly for it: a holder that has just taken the lock
    may not have written its record yet (truncated, or half-written)."""
    deadline = time.monotonic() + patience
    while (owner := _owner(fd)) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return owner


def acquire(warehouse: Path) -> bool:
    """Take the refresh lock of ``warehouse`` (re-entrant within the process), or raise
    ``RefreshRunning``. On the first acquisition, leftover builds of killed runs are removed.
    True when this call took it (rather than re-entered)."""
    warehouse = warehouse.resolve()
    with _guard:
        if warehouse in _held:
            _held[warehouse][1] += 1
            return False
        publish.make_build_dir(warehouse)
        path = lock_path(warehouse)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, file_modes.PRIVATE_FILE)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RefreshRunning(warehouse, _holder(fd)) from None
            file_modes.secure(path)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "started": time.time()}).encode(), 0)
        except BaseException:
            os.close(fd)  # releases the lock if taken
            raise
        _held[warehouse] = [fd, 1]
    publish.remove_builds(warehouse)  # no other refresh of it runs: every build there is a leftover
    return True


def release(warehouse: Path) -> None:
    warehouse = warehouse.resolve()
    with _guard:
        entry = _held.get(warehouse)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _held[warehouse]
        os.close(entry[0])  # the owner record stays: harmless, overwritten by the next holder


def holds(warehouse: Path) -> bool:
    return warehouse.resolve() in _held


def running(warehouse: Path) -> dict | None:
    """The holder of the lock (its record, ``{}`` if unreadable) when a refresh of ``warehouse``
    is running in another process, else None. For the schedule and the sensor: it only looks
    (it holds the lock for an instant when none is running)."""
    warehouse = warehouse.resolve()
    if holds(warehouse):
        return _owner(_held[warehouse][0]) or {}
    try:
        fd = os.open(lock_path(warehouse), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:  # e.g. another account's .builds/: the run's own lock still decides
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(fd) or {}
        return None
    finally:
        os.close(fd)


# --- `prrt refresh` ---------------------------------------------------------------------


def begin_cli_refresh(warehouse: Path) -> Exception | None:
    """For ``prrt refresh``, before it touches anything: the policy's umask, the lock (None when
    taken; the ``RefreshRunning`` to report when another refresh holds it), SIGTERM raising
    KeyboardInterrupt as Ctrl-C does (so a scheduler's timeout runs the clean-up), and the
    clean-up registered for interpreter exit as well. ``end_cli_refresh`` undoes it."""
    try:
        file_modes.policy()  # a PRRT_FILE_GROUP that does not exist: say so before any work
        file_modes.restrict_umask()
        acquire(warehouse)
    except (RefreshRunning, file_modes.FileGroupError) as problem:  # nothing done: say why, exit 3
        return problem
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    stop_signal.watch()  # a signal Dagster or dagster-dbt swallows still stops the publication
    atexit.register(end_cli_refresh, warehouse)
    return None


def end_cli_refresh(warehouse: Path) -> None:
    """Remove what this refresh left in ``.builds/`` (its build file if it failed, an early copy
    nobody took) and release the lock. Idempotent."""
    warehouse = warehouse.resolve()
    if not holds(warehouse):
        return
    try:
        publish.remove_builds(warehouse)  # we hold the lock: any build file of it is this run's
    finally:
        while holds(warehouse):
            release(warehouse)


def new_run_log(warehouse: Path) -> Path:
    """This run's log file (created private, empty), ``last-refresh.log`` pointing at it; older
    run logs of this warehouse are removed. Call while holding the lock."""
    directory = publish.make_build_dir(warehouse)
    stem = f"{warehouse.stem}.refresh-"
    for old in directory.glob(f"{stem}*.log"):
        old.unlink(missing_ok=True)
    path = directory / f"{stem}{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    file_modes.open_private(path).close()
    link = directory / f".{LATEST_LOG}.{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(path.name)
    os.replace(link, directory / LATEST_LOG)
    return path
