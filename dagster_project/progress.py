"""A Dagster logger that prints one line per step and check, for `prrt refresh`."""

from __future__ import annotations

import logging
import sys
import time

import dagster as dg
from dagster._core.log_manager import get_log_record_metadata, has_log_record_metadata  # noqa: PLC2701


def error_text(error) -> str:
    """The innermost cause of a Dagster error: the user's own exception message."""
    if error is None:
        return "failed"
    while error.cause is not None:
        error = error.cause
    return f"{error.cls_name}: {error.message.strip()}" if error.cls_name else error.message.strip()


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
        elif kind == "STEP_FAILURE":
            self._print(f"  ✗ {step}: {error_text(event.step_failure_data.error)}")
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                self._print(f"  ✗ check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} failed")
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
