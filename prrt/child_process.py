"""Subprocesses that die with the refresh that started them.

A refresh runs dbt (``dbt build``, a background ``dbt parse``, ``dbt parse`` in ``prrt prepare``)
as child processes. When the refresh is killed -- a scheduler's timeout (SIGTERM, then SIGKILL),
the OOM killer, ``kill PID`` -- dbt must not carry on writing the abandoned build file, holding
gigabytes of memory and the file's lock.

On Linux each child asks the kernel, between fork and exec, for SIGKILL when its parent ends
(``prctl(PR_SET_PDEATHSIG)``, kept across exec). Why this rather than a new session plus
``killpg`` from a signal handler or ``atexit``: no handler runs on SIGKILL or an OOM kill, while
the kernel's signal is sent however the parent ends; and the children stay in the refresh's
process group, so what is sent to the group (Ctrl-C in a terminal, ``timeout``, a cgroup kill)
still reaches them directly, which a new session would prevent. A graceful SIGTERM/SIGINT is
handled before that: Dagster turns it into an interrupt, dagster-dbt forwards SIGINT to dbt and
waits for it (``dagster_project/assets/dbt.py`` kills the background parse).

The kernel sends the signal when the *thread* that started the child ends, so it is only asked
for from the main thread (the refresh's steps run there); elsewhere, and off Linux, children are
started as before.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
try:
    # looked up once, here: between fork and exec the child should only make the call
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):
    _prctl = None


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child killed when this process ends, or None."""
    if _prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()
    args = (ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGKILL),
            ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))

    def preexec() -> None:
        _prctl(*args)
        if os.getppid() != parent:  # the parent ended before the call: no one will signal us
            os._exit(1)

    return preexec


class Popen(subprocess.Popen):
    """``subprocess.Popen`` whose child is killed when this process ends (see the module)."""

    def __init__(self, *args, **kwargs) -> None:
        if kwargs.get("preexec_fn") is None:
            kwargs["preexec_fn"] = die_with_parent()
        super().__init__(*args, **kwargs)


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` with the child killed when this process ends."""
    if kwargs.get("preexec_fn") is None:
        kwargs["preexec_fn"] = die_with_parent()
    return subprocess.run(*args, **kwargs)
