"""Who may read the files a refresh writes: one policy, set in one place.

The warehouse file holds the identifying ``ingest`` layer (``patient_id``, ``birth_date``), and
so do its build files, their WAL, DuckDB's spill files, the early copy and the logs. None of them
may be readable by other users of the machine.

- Default: files ``0600``, folders ``0700`` -- only the account that runs the refresh (and the
  app, when it runs as the same account) can read them.
- ``PRRT_FILE_GROUP=<group name or gid>``: files ``0640``, folders ``2750`` (setgid, so files that
  DuckDB and dbt create in them get the group too), group-owned by that group, so a service
  account in it (the Streamlit app) can read the published warehouse. The refreshing account
  must be a member of the group.

Modes are set at creation: the refresh process runs with a restrictive umask (``restrict_umask``;
DuckDB and dbt, its children, create their files with it), files this code writes are opened
with their mode (``open_private``), and every file that matters is chmod-ed (and chgrp-ed) again
to be sure (``secure``), the published warehouse after its rename (``verify``).
"""

from __future__ import annotations

import grp
import os
import stat
from dataclasses import dataclass
from pathlib import Path

FILE_GROUP_ENV = "PRRT_FILE_GROUP"


@dataclass(frozen=True)
class Policy:
    file_mode: int
    dir_mode: int
    umask: int
    gid: int | None  # None: leave the group as created

    @property
    def description(self) -> str:
        return f"files {self.file_mode:04o}, folders {self.dir_mode:04o}" + (
            f", group {self.gid}" if self.gid is not None else "")


class FileGroupError(ValueError):
    pass


def policy() -> Policy:
    """The policy in force, from ``PRRT_FILE_GROUP``."""
    group = os.environ.get(FILE_GROUP_ENV, "").strip()
    if not group:
        return Policy(file_mode=0o600, dir_mode=0o700, umask=0o077, gid=None)
    try:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise FileGroupError(f"{FILE_GROUP_ENV}={group}: no such group") from None
    return Policy(file_mode=0o640, dir_mode=0o2750, umask=0o027, gid=gid)


def restrict_umask() -> int:
    """Set the process umask of the policy (whatever it was, never looser); returns the old one."""
    wanted = policy().umask
    old = os.umask(wanted)
    os.umask(old | wanted)
    return old


def secure(path: Path) -> None:
    """Give ``path`` (a file or folder) the policy's mode and group."""
    rules = policy()
    if rules.gid is not None:
        os.chown(path, -1, rules.gid)
    os.chmod(path, rules.dir_mode if path.is_dir() else rules.file_mode)


def verify(path: Path) -> None:
    """Raise unless ``path`` has the policy's mode (and group): after the publishing rename."""
    rules = policy()
    info = os.stat(path)
    wanted = rules.dir_mode if stat.S_ISDIR(info.st_mode) else rules.file_mode
    if stat.S_IMODE(info.st_mode) != wanted:
        secure(path)
        info = os.stat(path)
    if stat.S_IMODE(info.st_mode) != wanted or (rules.gid is not None and info.st_gid != rules.gid):
        raise PermissionError(f"{path}: mode {stat.S_IMODE(info.st_mode):04o} group {info.st_gid},"
                              f" expected {rules.description}")


def make_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with the policy's folder mode; re-mode it if it exists."""
    rules = policy()
    missing = []
    parent = path
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, rules.dir_mode & 0o777)
        except FileExistsError:
            continue
        secure(folder)
    secure(path)
    return path


def open_private(path: Path, mode: str = "w"):
    """``open(path, mode)`` for writing, the file created with the policy's mode (never wider, even
    for a moment) and its mode and group set again if it existed."""
    rules = policy()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, rules.file_mode)
    try:
        if rules.gid is not None:
            os.fchown(fd, -1, rules.gid)
        os.fchmod(fd, rules.file_mode)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise
