"""A Dagster logger that prints one line per step and check, for `prrt refresh`."""

from __future__ import annotations

import logging
import sys
import time

import dagster as dg
from dagster._core.log_manager import get_log_record_metadata, has_log_record_metadata  # noqa: PLC2701


def error_text(error) -> str:
    """The innermost cause of a Dagster error, as ``"<class name>: <message>"``: the user's own
    exception (a ``dg.Failure`` raised ``from`` it gives way to it)."""
    if error is None:
        return "Error: failed"
    while error.cause is not None:
        error = error.cause
    message = error.message.strip()
    # Dagster keeps the exception as Python prints it: "prrt.ingest.reader.ExportFileError: ..."
    qualified, sep, rest = message.partition(": ")
    if sep and error.cls_name and qualified.split(".")[-1] == error.cls_name:
        message = rest
    return f"{error.cls_name}: {message}" if error.cls_name else message


def is_check_failure(error) -> bool:
    """A step that failed only because a blocking check did (the check's own line says more)."""
    return error is not None and error.cls_name == "DagsterAssetCheckFailedError"


def first_failure(events) -> tuple[str, str] | None:
    """(step, error) of the run's first failure, the cause of the others: a failed blocking
    check as (``"check <asset>:<name>"``, ``"AssetCheckFailed: <reason>"``), or a step's
    ``error_text``."""
    for event in events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.event_specific_data.passed:
            evaluation = event.event_specific_data
            return check_name(evaluation), f"AssetCheckFailed: {evaluation.description or 'failed'}"
        if event.event_type_value == "STEP_FAILURE" and not is_check_failure(event.step_failure_data.error):
            return event.step_key, error_text(event.step_failure_data.error)
    return None


def check_name(evaluation) -> str:
    return f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name}"


class _ProgressHandler(logging.Handler):
    def __init__(self, stream) -> None:
        super().__init__(logging.DEBUG)  # step events are logged at DEBUG
        self.stream = stream
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if not has_log_record_metadata(record):
            return
        event = get_log_record_metadata(record).get("dagster_event")
        if event is None:
            return
        step = event.step_key or ""
        kind = event.event_type_value
        if kind == "STEP_START":
            self.started[step] = time.monotonic()
            self._print(f"  … {step}")
        elif kind == "STEP_SUCCESS":
            self._print(f"  ✓ {step} ({time.monotonic() - self.started.get(step, time.monotonic()):.1f}s)")
        elif kind == "STEP_FAILURE" and not is_check_failure(event.step_failure_data.error):
            self._print(f"  ✗ {step}: {error_text(event.step_failure_data.error)}")
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                self._print(f"  ✗ {check_name(evaluation)}: {evaluation.description or 'failed'}")
        elif kind == "STEP_UP_FOR_RETRY":
            self._print(f"  ↻ {step}: retrying")

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


@dg.logger(description="Concise per-step progress on stdout (used by `prrt refresh`)")
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.getLogger("prrt.progress")
    # the real terminal: `prrt refresh` sends dbt's verbose stdout to a log file
    logger.handlers = [_ProgressHandler(sys.__stdout__)]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger
