"""The last line of a failed refresh: what failed and what to do, in one line.

Every way a refresh can fail ends with ``prrt refresh: FAILED: <step>: <what went wrong>: <what
to do>`` (and a non-zero exit). The step is the Dagster step (``ingest_raw_exports``,
``prrt_dbt_models``), ``check <asset>:<name>`` for a blocking check, or what was being done
before the run started (``warehouse folder``, ``pseudonym key``, ``dbt parse``).
The same line is what a failure alert says (no Dagster in this module: the CLI and the
daemon's run-failure hook both call it).

What to do depends on what went wrong, so the advice is data: ``ADVICE`` below, first match
wins, matched against the error's class and message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PREFIX = "prrt refresh: FAILED: "
AGAIN = "run `prrt refresh` again"


@dataclass(frozen=True)
class Advice:
    pattern: re.Pattern[str]  # searched in "<error class>: <message>"
    problem: str | None  # replaces the message (None: the message says it best)
    todo: str  # {folder}: the warehouse's folder; {log}: the run's full log
    retry_helps: bool = False  # a step failing so is retried (once) only if a retry can help


ADVICE: tuple[Advice, ...] = (
    # The disk: the build, dbt's files or the log cannot be written. Nothing succeeds on a retry.
    Advice(re.compile(r"No space left on device|\[Errno 28\]|disk is full|ENOSPC", re.IGNORECASE),
           "no space left on the disk that holds {folder}",
           "free space there (a refresh writes a new warehouse beside the published one, so it needs "
           f"room for about twice its size), then {AGAIN}"),
    Advice(re.compile(r"Read-only file system|\[Errno 30\]|EROFS"),
           "the warehouse folder {folder} is on a read-only file system",
           "publish to a writable folder (--warehouse or PRRT_WAREHOUSE), or have the file system "
           f"mounted read-write, then {AGAIN}"),
    Advice(re.compile(r"Permission denied|\[Errno 13\]|Operation not permitted|\[Errno 1\]"),
           None,
           "give the account that runs the refresh write access to {folder} (and read access to the "
           f"export), or publish elsewhere with --warehouse, then {AGAIN}"),
    # The export itself: the message names file, line and field and what is wrong with it.
    Advice(re.compile(r"^ExportFileError: "), None, f"correct the export file (or export it again), then {AGAIN}"),
    Advice(re.compile(r"^(PseudonymKeyError|FileGroupError): "), None, f"correct the setting, then {AGAIN}"),
    # A blocking check: its reason says what it found.
    Advice(re.compile(r"^AssetCheckFailed: "), None, f"correct the export as the check says, then {AGAIN}"),
    Advice(re.compile(r"^DagsterDbtCliRuntimeError: "), "dbt failed",
           "the dbt error is in the full log ({log}); if the export is at fault correct it and "
           f"{AGAIN}, otherwise report it to whoever maintains the rules"),
)
FALLBACK = Advice(re.compile(""), None, f"see the full log ({{log}}); {AGAIN}, and report it if it fails again",
                  retry_helps=True)


def classify(error: str) -> Advice:
    """The advice for an error given as ``"<class name>: <message>"``."""
    return next((advice for advice in ADVICE if advice.pattern.search(error)), FALLBACK)


def retry_can_help(error: BaseException) -> bool:
    return classify(exception_text(error)).retry_helps


def failure_line(step: str, error: str, warehouse: Path, log: Path | None = None) -> str:
    """The one line a failed refresh ends with. ``error`` is ``"<class name>: <message>"`` (or
    ``"AssetCheckFailed: <reason>"``); the class name is dropped from what is printed."""
    advice = classify(error)
    fill = {"folder": Path(warehouse).parent, "log": log or "not written"}
    problem = advice.problem.format(**fill) if advice.problem else _message(error)
    todo = advice.todo.format(**fill)
    return f"{PREFIX}{step}: {problem}: {todo}"


def exception_text(error: BaseException) -> str:
    """``"<class name>: <message>"`` for an exception, as ``failure_line`` takes it."""
    return f"{type(error).__name__}: {error}"


def _message(error: str) -> str:
    # "ExportFileError: labs.csv: ..." -> "labs.csv: ..."
    name, sep, rest = error.partition(": ")
    message = rest if sep and re.fullmatch(r"[A-Za-z_][\w.]*", name) else error
    return " ".join(message.split())  # one line
