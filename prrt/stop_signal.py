"""Whether ``prrt refresh`` was asked to stop (SIGTERM, Ctrl-C), however the signal was handled.

``prrt refresh`` turns SIGTERM into the interrupt Ctrl-C raises, so a scheduler's timeout
stops it and cleans up. During a run, though, Dagster replaces the handlers: outside user code
it only notes an interrupt, and dagster-dbt (0.29) reads dbt's output in a loop whose bare
``except:`` catches an interrupt raised while it parses a line. Under load a signal was lost so,
and the refresh ran on and published. ``signal.set_wakeup_fd`` reports every signal that
reaches the process whichever Python handler is installed: a thread reads it, the dbt step
stops dbt at its next event and the publish step refuses to publish once a stop was asked.

Only ``prrt refresh`` watches (its own process); a run of the Dagster daemon is stopped by
Dagster's own termination.
"""

from __future__ import annotations

import os
import signal
import threading

_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
_requested: list[int] = []  # the first stop signal received
_watching = threading.Event()

STOPPED = "the refresh was asked to stop (SIGTERM or Ctrl-C); nothing was published"


def watch() -> None:
    """Start noting stop signals (main thread only; once per process)."""
    if threading.current_thread() is not threading.main_thread() or _watching.is_set():
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # set_wakeup_fd requires it
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    threading.Thread(target=_read, args=(read_fd,), name="prrt-stop-signal", daemon=True).start()
    _watching.set()


def _read(fd: int) -> None:
    while data := os.read(fd, 512):
        for signo in data:
            if signo in _STOP_SIGNALS and not _requested:
                _requested.append(signo)


def requested() -> int | None:
    """The stop signal received (SIGINT or SIGTERM), or None."""
    return _requested[0] if _requested else None
