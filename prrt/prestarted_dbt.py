"""A dbt process started ahead of time, for an incremental refresh's ``dbt build``.

Starting dbt costs about 3 s before it does anything: the Python imports of dbt-core and its
adapter. In a nightly incremental refresh (about 35 s at a million patients) that is a large
share, and it sits on the critical path, after the ingestion. So ``prrt refresh`` starts a
Python process that does those imports while the refresh itself imports its stack and
ingests, then waits. When dagster-dbt starts ``dbt build`` (through the ``subprocess`` that
dagster_project/resources.py gives it), this process is handed the command line, environment
and working directory instead, and runs dbt's own command-line entry point with them: the
same code as the ``dbt`` console script, so dagster-dbt reads the same JSON event stream.

The process is killed with the refresh (prrt/child_process.py), or when the refresh ends
without handing it a command; it also exits by itself when its stdin closes. Anything it
cannot be used for -- another executable, other pipes, a process that has ended -- starts
dbt as before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from . import child_process

# The one process waiting, and the dbt console script it stands in for.
_waiting: tuple[subprocess.Popen, str] | None = None


def start(dbt_executable: str) -> None:
    """Start the process that will run the next ``dbt_executable`` command (at most one)."""
    global _waiting
    if _waiting is not None:
        return
    process = child_process.Popen(
        # -P: not the current folder on sys.path (the repository's dbt/ folder is not the dbt
        # package); -u: unbuffered output, as dagster-dbt asks of dbt (PYTHONUNBUFFERED).
        [sys.executable, "-P", "-u", "-m", __name__],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    _waiting = (process, str(Path(dbt_executable)))


def take(args: Sequence[str], kwargs: dict) -> subprocess.Popen | None:
    """The waiting process, now running ``args`` (``subprocess.Popen`` arguments) -- or None
    when it cannot stand in for them: then the caller starts the command itself."""
    global _waiting
    if _waiting is None or isinstance(args, (str, bytes)) or not args:
        return None
    process, executable = _waiting
    expected = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    if (str(args[0]) != executable or {k: kwargs.get(k) for k in expected} != expected
            or set(kwargs) - {"stdout", "stderr", "env", "cwd"}):
        return None
    _waiting = None
    env = kwargs.get("env")
    request = {
        "argv": [str(a) for a in args[1:]],
        "env": dict(os.environ if env is None else env),
        "cwd": str(kwargs.get("cwd") or os.getcwd()),
    }
    try:
        if process.poll() is not None:  # it has ended (an import failed, a Ctrl-C while importing)
            raise BrokenPipeError
        process.stdin.write(json.dumps(request).encode() + b"\n")
        process.stdin.close()
    except OSError:  # it cannot take the command: start dbt the usual way
        process.kill()
        process.wait()
        return None
    # what the process runs now, as dagster-dbt reports it (its log line and failure message)
    process.args = [str(a) for a in args]
    command = next((a for a in request["argv"] if not a.startswith("-")), "")
    print(f"dbt {command}: in the dbt process started with the refresh (pid {process.pid})", flush=True)
    return process


def discard() -> None:
    """End the waiting process if nothing took it: it holds nothing worth a graceful exit, and
    the refresh should not wait for its imports to finish."""
    global _waiting
    if _waiting is None:
        return
    process, _ = _waiting
    _waiting = None
    process.kill()
    process.wait()
    process.stdin.close()
    process.stdout.close()


def _serve() -> int:
    """In the started process: import dbt, wait for one command, run it as the dbt script would."""
    from dbt.cli.main import cli  # the slow part, done while nobody waits for it

    import dbt.adapters.duckdb  # noqa: F401 - the adapter dbt-duckdb registers, imported too

    line = sys.stdin.buffer.readline()
    if not line:  # the refresh ended, or went on without us
        return 0
    request = json.loads(line)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.argv = ["dbt", *request["argv"]]
    return cli(prog_name="dbt")  # as the console script names it; click exits with dbt's exit code


if __name__ == "__main__":
    sys.exit(_serve())
