"""The `prrt` command: prepare the dbt manifest, refresh the warehouse, make synthetic exports."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import subprocess
import sys
from pathlib import Path

from . import (
    child_process,
    config,
    file_modes,
    prestarted_dbt,
    publish,
    refresh_lock,
    stop_signal,
)
from .refresh_failure import AGAIN, PREFIX, exception_text, failure_line

WAREHOUSE_FOLDER = "warehouse folder"  # the "step" of what fails before the run starts


def prepare(force: bool = True) -> None:
    """Write dbt's manifest (dbt parse) so Dagster can build its asset graph. Unless
    ``force``, skipped when the manifest was parsed from the dbt project as it is now."""
    from .refresh_plan import dbt_fingerprint

    target = config.DBT_PROJECT_DIR / "target"
    stamp = target / "prrt_manifest_fingerprint"
    fingerprint = dbt_fingerprint()
    if not force and (target / "manifest.json").exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return
    child_process.run(  # killed with `prrt refresh`, if it is
        [config.DBT_EXECUTABLE, "parse", "--quiet",
         "--project-dir", str(config.DBT_PROJECT_DIR), "--profiles-dir", str(config.DBT_PROJECT_DIR)],
        check=True,
    )
    stamp.write_text(fingerprint)


def refresh(raw: Path | None, warehouse: Path | None, full: bool = False,
            allow_development_key: bool = False) -> int:
    """Run the nightly job in-process; 0 when the warehouse was published. The arguments
    override PRRT_RAW_DIR / PRRT_WAREHOUSE / PRRT_FULL_REFRESH and reach the job as its
    resources' run config."""
    from .pseudonym import (
        DEVELOPMENT_KEY_BANNER,
        PseudonymKeyError,
        check_key_allowed,
        is_development_key,
        pseudonym_key,
    )

    raw_dir = (raw or config.raw_dir()).resolve()
    warehouse_path = (warehouse or config.warehouse_path()).resolve()
    full = full or os.environ.get("PRRT_FULL_REFRESH", "") == "1"
    if not raw_dir.is_dir():
        print(f"{PREFIX}export folder: {raw_dir} does not exist: give the folder the hospital system "
              "exports to (--raw or PRRT_RAW_DIR)", file=sys.stderr)
        return 2
    try:
        key = pseudonym_key()
        check_key_allowed(key, raw_dir, allow_development_key)
    except PseudonymKeyError as error:
        print(failure_line("pseudonym key", exception_text(error), warehouse_path), file=sys.stderr)
        return 2
    # One refresh of a warehouse at a time; private files; no build file left behind (prrt/refresh_lock.py)
    try:
        busy = refresh_lock.begin_cli_refresh(warehouse_path)
    except OSError as error:  # the warehouse folder cannot be written: nothing was done
        print(failure_line(WAREHOUSE_FOLDER, exception_text(error), warehouse_path), file=sys.stderr)
        return 1
    if busy:
        print(f"prrt refresh: {busy}", file=sys.stderr)
        return refresh_lock.EXIT_BUSY
    if is_development_key(key):
        print(f"prrt refresh: WARNING: {DEVELOPMENT_KEY_BANNER}", file=sys.stderr, flush=True)
    # An incremental night is short, so its fixed costs count: while this process imports its
    # stack (seconds of CPU), copy the published warehouse it builds on and start dbt.
    try:
        if _starts_incremental(raw_dir, warehouse_path, key, full):
            publish.start_early_copy(warehouse_path)
            prestarted_dbt.start(config.DBT_EXECUTABLE)
    except Exception:  # noqa: BLE001 - only a head start: the refresh copies and starts dbt itself otherwise
        pass
    warehouse_config = {"raw_dir": str(raw_dir), "warehouse": str(warehouse_path), "full_refresh": full,
                        "allow_development_key": allow_development_key}
    try:
        return _run_refresh_job(warehouse_config)
    except OSError as error:  # the disk or the folder, before or around the run (not in a step)
        print(failure_line(WAREHOUSE_FOLDER, exception_text(error), warehouse_path), file=sys.stderr)
        return 1
    finally:
        prestarted_dbt.discard()
        publish.discard_early_copy(warehouse_path)
        refresh_lock.end_cli_refresh(warehouse_path)


def _starts_incremental(raw_dir: Path, warehouse: Path, key: bytes, full: bool) -> bool:
    """Whether the refresh will most likely be incremental (the ingestion decides for good)."""
    if full or not warehouse.exists():
        return False
    from .refresh_plan import plan_refresh

    return plan_refresh(raw_dir, warehouse, key).mode == "incremental"


def _run_refresh_job(warehouse_config: dict) -> int:
    try:
        prepare(force=False)
    except (OSError, subprocess.CalledProcessError) as error:
        print(failure_line("dbt parse", exception_text(error), config.DBT_PROJECT_DIR / "target"), file=sys.stderr)
        return 1
    # Imported only now: the definitions read the manifest at import.
    # Dagster, dagster-dbt and dbt-core make most of a million objects that live
    # until exit; the cyclic GC would go through them all again and again as they are made (~1 s
    # of every refresh): collect nothing while importing, then set them aside for good.
    gc.disable()
    try:
        import dagster as dg

        from dagster_project.definitions import defs
        from dagster_project.progress import first_failure

        instance = dg.DagsterInstance.ephemeral()  # its storage's imports (SQLAlchemy) too
    finally:
        gc.freeze()
        gc.enable()

    warehouse = Path(warehouse_config["warehouse"])
    print(f"prrt refresh: {warehouse_config['raw_dir']} -> {warehouse}", flush=True)
    log_path = refresh_lock.new_run_log(warehouse)
    job = defs.resolve_job_def("prrt_refresh")
    # dbt's per-node output goes to the log file; the progress logger prints one line per step.
    # (the instance is a context manager: leaving it removes its temporary folder)
    with instance, file_modes.open_private(log_path) as log, contextlib.redirect_stdout(log):
        result = job.execute_in_process(
            instance=instance,
            run_config={"loggers": {"progress": {}}, "resources": {"warehouse": {"config": warehouse_config}}},
            raise_on_error=False,
        )
    failure = first_failure(result.all_events)
    # Nothing of the run is needed any more: spare the exit its final pass of the GC over the
    # run's objects (~1.5 s), as for the modules above.
    gc.freeze()
    if result.success and failure is None:
        print(f"prrt refresh: published {warehouse}")
        return 0
    if signo := stop_signal.requested():  # stopped: say so, whatever else the run reported
        print(f"{PREFIX}{signal.Signals(signo).name}: {stop_signal.STOPPED}: {AGAIN}", file=sys.stderr)
        return 128 + signo
    step, error = failure or ("prrt_refresh", "Error: the run failed")
    print(f"prrt refresh: the published warehouse was left unchanged; full log: {log_path}", file=sys.stderr)
    print(failure_line(step, error, warehouse, log_path), file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["synth"]:  # its own argparse: prrt synth --patients N --out DIR ...
        from .synth import main as synth_main

        return synth_main(argv[1:]) or 0
    if argv[:1] == ["synth-new-day"]:  # prrt synth-new-day DIR --day YYYY-MM-DD
        from .synth_new_day import main as new_day_main

        return new_day_main(argv[1:])
    parser = argparse.ArgumentParser(prog="prrt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="write the dbt manifest (dbt parse)")
    p_refresh = sub.add_parser("refresh", help="load the export, build and publish the warehouse")
    p_refresh.add_argument("--raw", type=Path, help="export folder (default: PRRT_RAW_DIR or raw/demo)")
    p_refresh.add_argument("--warehouse", type=Path, help="DuckDB file to publish (default: PRRT_WAREHOUSE)")
    p_refresh.add_argument("--full", action="store_true",
                           help="rebuild from the whole export even if only new files were added")
    p_refresh.add_argument("--allow-development-key", action="store_true",
                           help="accept the public development pseudonym key for an export other than the "
                                "bundled demo (synthetic test data only; never for real patients)")
    p_deid = sub.add_parser("deidentify", help="write a de-identified copy of the warehouse for use outside "
                                              "the department (new keys, shifted dates or months)")
    p_deid.add_argument("--warehouse", type=Path, help="published warehouse (default: PRRT_WAREHOUSE)")
    p_deid.add_argument("--out", type=Path, required=True, help="new DuckDB file to write")
    p_deid.add_argument("--dates", choices=("shift", "months"), default="shift",
                        help="shift: each patient's dates move by a random number of days (intervals kept); "
                             "months: dates become whole months from the first cycle")
    p_deid.add_argument("--max-shift-days", type=int, default=180, help="largest shift, in days (default 180)")
    p_deid.add_argument("--age-band-years", type=int, help="replace the exact age by bands of this width (90+ on top)")
    sub.add_parser("synth", help="write a synthetic export in the contract format (see prrt synth --help)")
    sub.add_parser("synth-new-day", help="add a new day's files to a synthetic export (incremental benchmark)")
    args = parser.parse_args(argv)

    if args.command == "prepare":
        prepare()
        return 0
    if args.command == "deidentify":
        from .deidentify import deidentify

        try:
            copy = deidentify(args.warehouse or config.warehouse_path(), args.out, dates=args.dates,
                              max_shift_days=args.max_shift_days, age_band_years=args.age_band_years)
        except (OSError, ValueError) as error:
            print(f"prrt deidentify: FAILED: {error}", file=sys.stderr)
            return 2
        print(f"prrt deidentify: wrote {copy.path}: {copy.patients} patients, {copy.tables} tables; {copy.dates}")
        return 0
    return refresh(args.raw, args.warehouse, full=args.full, allow_development_key=args.allow_development_key)


if __name__ == "__main__":
    sys.exit(main())
