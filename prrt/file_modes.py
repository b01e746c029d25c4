"""Who may read the files a refresh writes: one policy, set in one place.

The warehouse file holds the identifying ``ingest`` layer (``patient_id``, ``birth_date``), and
so do its build files, their WAL, DuckDB's spill files, the early copy and the logs. None of them
may be readable by other users of the machine.

- Everything under ``.builds/`` (build files, WAL, spill folders, early copies, logs, the lock,
  dbt's target folders and parse cache) is the refreshing account's alone: files ``0600``,
  folders ``0700``, always -- no reader ever needs them.
- The published warehouse: ``0600`` by default (readable by the account that refreshes, and by
  the app when it runs as the same account). With ``PRRT_FILE_GROUP=<group name or gid>`` it is
  ``0640``, group-owned by that group, so a service account in it (the Streamlit app, data
  managers) can read it; the refreshing account must be a member of the group. A warehouse
  folder the refresh has to create gets ``0700``, or ``2750`` with the group.

Modes are set at creation: the refresh process runs with umask 077 (``restrict_umask``; DuckDB
and dbt, its children, create their files with it), files this code writes are opened with
their mode (``open_private``), and files that matter are chmod-ed (and chgrp-ed) again to be
sure (``secure``), the published warehouse after its rename too (``verify``).
"""

from __future__ import annotations

import grp
import os
import stat
from dataclasses import dataclass
from pathlib import Path

FILE_GROUP_ENV = "PRRT_FILE_GROUP"


PRIVATE_FILE, PRIVATE_DIR, UMASK = 0o600, 0o700, 0o077


@dataclass(frozen=True)
class Policy:
    """Modes of what readers open: the published warehouse and its folder."""

    file_mode: int
    dir_mode: int
    gid: int | None  # None: leave the group as created

    @property
    def description(self) -> str:
        return f"mode {self.file_mode:04o}" + (f", group {self.gid}" if self.gid is not None else "")


class FileGroupError(ValueError):
    pass


def policy() -> Policy:
    """The policy in force, from ``PRRT_FILE_GROUP``."""
    group = os.environ.get(FILE_GROUP_ENV, "").strip()
    if not group:
        return Policy(file_mode=PRIVATE_FILE, dir_mode=PRIVATE_DIR, gid=None)
    try:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise FileGroupError(f"{FILE_GROUP_ENV}={group}: no such group") from None
    return Policy(file_mode=0o640, dir_mode=0o2750, gid=gid)


def restrict_umask() -> int:
    """Set the process umask to 077 (never looser than it was); returns the old one."""
    old = os.umask(UMASK)
    os.umask(old | UMASK)
    return old


def secure(path: Path, shared: bool = False) -> None:
    """Give ``path`` (a file or folder) its mode: private, or the published warehouse's (``shared``)."""
    rules = policy()
    if shared and rules.gid is not None:
        os.chown(path, -1, rules.gid)
    if path.is_dir():
        os.chmod(path, rules.dir_mode if shared else PRIVATE_DIR)
    else:
        os.chmod(path, rules.file_mode if shared else PRIVATE_FILE)


def verify(path: Path) -> None:
    """Raise unless the published file ``path`` has the policy's mode (and group), after its rename."""
    rules = policy()
    info = os.stat(path)
    if stat.S_IMODE(info.st_mode) != rules.file_mode or (rules.gid is not None and info.st_gid != rules.gid):
        secure(path, shared=True)
        info = os.stat(path)
    if stat.S_IMODE(info.st_mode) != rules.file_mode or (rules.gid is not None and info.st_gid != rules.gid):
        raise PermissionError(f"{path}: mode {stat.S_IMODE(info.st_mode):04o} group {info.st_gid},"
                              f" expected {rules.description}")


def make_dir(path: Path, shared: bool = False) -> Path:
    """Create ``path`` (and missing parents) private, or ``shared`` as the warehouse's folder;
    an existing ``path`` is given the mode too (missing parents are created private, or
    ``shared`` with ``path``)."""
    missing = []
    parent = path
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue
        secure(folder, shared)
    secure(path, shared)
    return path


def open_private(path: Path, mode: str = "w"):
    """``open(path, mode)`` for writing, the file created ``0600`` (never wider, even for a
    moment), and made ``0600`` if it existed."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise
