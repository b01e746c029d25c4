"""A Dagster logger that prints one line per step and check, for `prrt refresh`."""

from __future__ import annotations

import logging
import sys
import time

import dagster as dg
from dagster._core.log_manager import get_log_record_metadata, has_log_record_metadata  # noqa: PLC2701


class _ProgressHandler(logging.Handler):
    def __init__(self, stream) -> None:
        super().__init__(logging.INFO)
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
            error = event.step_failure_data.error
            self._print(f"  ✗ {step}: {error.message.strip() if error else 'failed'}")
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
    logger.handlers = [_ProgressHandler(sys.stdout)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
