"""How long does a refresh take, compared with the least DuckDB could possibly do?

    python benchmarks/bench_refresh.py --patients 10000 [--keep DIR] [--raw EXPORT] [--messy] [--markdown]

1. generate: a synthetic export of N patients (prrt.synth) into a temporary folder
   (or ``--keep DIR``), in a child process: wall time and peak memory; or ``--raw EXPORT``:
   a copy of an existing export;
2. floor: a fresh process in which DuckDB alone loads the same CSV files into typed
   tables (read_csv with explicit column types) in a fresh database file -- no
   validation, no dbt, no analytics: the lower bound for any refresh;
3. refresh: ``prrt refresh --raw DIR --warehouse FILE`` as a child process: wall
   time and peak memory. Skipped, with a message, when the console script is not
   there or does not know ``refresh`` yet.

Every step runs under a fresh wrapper interpreter that reports the wall time,
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (the largest single process in the tree)
and the peak of the whole process tree's summed RSS, sampled from /proc every
50 ms (no psutil needed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FILES = (
    "patients.csv", "metastases.csv", "cycles.csv", "labs.csv", "performance_status.csv",
    "tumour_assessments.csv", "follow_up.csv",
)

# Runs `argv` as a child, reports JSON on its last stdout line: wall seconds, exit code,
# ru_maxrss of the children (largest process, MB) and the sampled peak of the tree's RSS sum.
_WRAPPER = textwrap.dedent(
    r"""
    import json, os, resource, subprocess, sys, threading, time

    PAGE = os.sysconf("SC_PAGE_SIZE")

    def tree_rss(root):
        parents, rss = {}, {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    stat = fh.read()
                with open(f"/proc/{name}/statm", "rb") as fh:
                    resident = int(fh.read().split()[1])
            except OSError:
                continue
            fields = stat[stat.rindex(b")") + 2:].split()
            parents[int(name)] = int(fields[1])
            rss[int(name)] = resident * PAGE
        total, todo = 0, [root]
        children = {}
        for pid, ppid in parents.items():
            children.setdefault(ppid, []).append(pid)
        while todo:
            pid = todo.pop()
            total += rss.get(pid, 0)
            todo.extend(children.get(pid, ()))
        return total

    argv = sys.argv[1:]
    start = time.perf_counter()
    child = subprocess.Popen(argv)
    peak, done = 0, threading.Event()

    def sample():
        global peak
        while not done.is_set():
            peak = max(peak, tree_rss(child.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rc = child.wait()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    maxrss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"rc": rc, "wall_s": wall, "maxrss_mb": maxrss_mb, "tree_peak_mb": peak / 2**20}))
    """
)

_GENERATE = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from prrt.synth import generate_export
    n, out, seed, sites, messy = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
    t0 = time.perf_counter()
    counts = generate_export(n, out, seed=seed, sites=sites, messy=messy)
    (out / "_bench_counts.json").write_text(json.dumps({"rows": counts, "generate_s": time.perf_counter() - t0}))
    """
)

# Contract columns with the types a loader would end up with (booleans stay text: their
# spellings vary; they are not DuckDB booleans).
_TYPES = {
    "patients.csv": {
        "patient_id": "VARCHAR", "full_name": "VARCHAR", "birth_date": "DATE", "sex": "VARCHAR",
        "primary_site": "VARCHAR", "tumour_grade": "VARCHAR", "ki67_percent": "DOUBLE",
        "prior_surgery": "VARCHAR", "prior_chemotherapy": "VARCHAR", "prior_radiotherapy": "VARCHAR",
        "hypertension": "VARCHAR", "diabetes": "VARCHAR", "baseline_imaging": "VARCHAR",
        "krenning_score": "INTEGER", "suvmax": "DOUBLE",
    },
    "metastases.csv": {"patient_id": "VARCHAR", "site": "VARCHAR"},
    "cycles.csv": {
        "patient_id": "VARCHAR", "cycle_number": "INTEGER", "administration_date": "DATE",
        "activity": "DOUBLE", "activity_unit": "VARCHAR", "amino_acid_infusion": "VARCHAR",
    },
    "labs.csv": {
        "patient_id": "VARCHAR", "sample_date": "DATE", "analyte": "VARCHAR", "value": "DOUBLE",
        "unit": "VARCHAR", "lln": "DOUBLE", "uln": "DOUBLE",
    },
    "performance_status.csv": {
        "patient_id": "VARCHAR", "assessment_date": "DATE", "ecog": "INTEGER", "kps": "INTEGER",
    },
    "tumour_assessments.csv": {
        "patient_id": "VARCHAR", "assessment_date": "DATE", "modality": "VARCHAR",
        "recist_response": "VARCHAR", "sum_of_diameters_mm": "DOUBLE",
    },
    "follow_up.csv": {
        "patient_id": "VARCHAR", "last_contact_date": "DATE", "vital_status": "VARCHAR", "death_date": "DATE",
    },
}

# The floor: DuckDB alone, typed tables in a fresh file. Messy exports use the formats recorded
# next to them; their bad rows are skipped (ignore_errors), which only makes the floor lower.
_FLOOR = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import duckdb
    raw, db, types = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    record = raw / "_expected_rejections.json"
    formats = json.loads(record.read_text())["formats"] if record.exists() else {}
    t0 = time.perf_counter()
    con = duckdb.connect(db)
    rows = {}
    for name, cols in types.items():
        fmt = formats.get(name, {})
        spec = "{" + ", ".join(f"'{c}': '{t}'" for c, t in cols.items()) + "}"
        options = [f"columns = {spec}", "header = true", f"delim = '{fmt.get('delimiter', ',')}'",
                   "dateformat = '" + ("%d/%m/%Y" if fmt.get("date_format") == "dmy" else "%Y-%m-%d") + "'"]
        if fmt.get("decimal_comma"):
            options.append("decimal_separator = ','")
        if fmt:
            options.append("ignore_errors = true")
        table = name.removesuffix(".csv")
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv('{raw / name}', {', '.join(options)})")
        rows[name] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    con.close()
    print(json.dumps({"floor_s": time.perf_counter() - t0, "rows": rows}))
    """
)


def _run(argv: list[str], env: dict[str, str]) -> tuple[dict, str]:
    """Run argv under the wrapper; return (wrapper metrics, child's stdout minus the metrics line)."""
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"wrapper failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    metrics = json.loads(lines[-1])
    metrics["stderr"] = proc.stderr
    return metrics, "\n".join(lines[:-1])


def _prrt_script() -> Path | None:
    """The `prrt` console script of this interpreter's environment, if it can refresh."""
    script = Path(sys.executable).with_name("prrt")
    if not script.exists():
        found = shutil.which("prrt")
        script = Path(found) if found else script
    if not script.exists():
        return None
    probe = subprocess.run([str(script), "refresh", "--help"], capture_output=True, text=True)
    return script if probe.returncode == 0 and "--warehouse" in probe.stdout else None


def _profile(warehouse: Path, top: int = 8) -> dict:
    """Where the last refresh spent its time: each step's duration from the warehouse's own
    audit.run_log, and dbt's slowest nodes from its run_results.json."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        run_id = con.execute("SELECT run_id FROM audit.refresh_plan").fetchone()[0]
        steps = con.execute(
            """SELECT step, duration_seconds FROM audit.run_log
               WHERE run_id = (SELECT run_id FROM audit.refresh_plan) AND duration_seconds IS NOT NULL
               ORDER BY started_at"""
        ).fetchall()
    target = warehouse.parent / ".builds" / "dbt-target" / run_id
    results = target / "run_results.json"
    # dbt re-parsing the whole project costs seconds per invocation (dagster_project/dbt_parse_cache.py)
    logs = [p.read_text(errors="replace") for p in target.rglob("dbt.log")]
    dbt = {"invocations": len(logs),
           "full_parses": sum("Unable to do partial parsing" in log or "Starting full parse" in log for log in logs)}
    nodes = []
    if results.exists():
        run = json.loads(results.read_text())
        # unique_id: <type>.<project>.<name>[.<hash>]
        nodes = sorted(((r["unique_id"].split(".")[2], r["execution_time"]) for r in run["results"]),
                       key=lambda item: -item[1])
        nodes = [("dbt elapsed (all nodes)", run.get("elapsed_time", 0.0)), *nodes[:top]]
    return {"steps": steps, "dbt": dbt, "dbt_nodes": nodes}


def _day_after_export(raw: Path) -> str:
    """The day after the export's last follow-up contact (never after today)."""
    import datetime as dt

    import duckdb

    with duckdb.connect() as con:
        last = con.execute(
            f"SELECT max(CAST(last_contact_date AS DATE)) FROM read_csv('{raw / 'follow_up.csv'}')"
        ).fetchone()[0]
    return min(last + dt.timedelta(days=1), dt.date.today()).isoformat()


def _count_rows(raw: Path) -> dict:
    """Row counts of an existing export, in the shape the generate step reports (no generation)."""
    import duckdb

    with duckdb.connect() as con:
        rows = {f: con.execute(f"SELECT count(*) FROM read_csv('{raw / f}')").fetchone()[0] for f in FILES}
    return {"rc": 0, "wall_s": 0.0, "maxrss_mb": 0.0, "tree_peak_mb": 0.0,
            "rows": {"rows": rows, "generate_s": 0.0}}


def _machine() -> dict[str, str]:
    import duckdb
    import numpy
    import pyarrow

    mem_gb = "?"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = f"{int(line.split()[1]) / 2**20:.1f}"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": str(os.cpu_count()),
        "ram_gb": mem_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
        "numpy": numpy.__version__,
    }


def _table(rows: list[tuple[str, str]], markdown: bool) -> str:
    if markdown:
        out = ["| measure | value |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in rows]
        return "\n".join(out)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=10_000, help="synthetic patients (default 10000)")
    parser.add_argument("--keep", type=Path, help="write the export (and warehouses) here and keep them")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--messy", action="store_true", help="benchmark a messy export (format variations, bad rows)")
    parser.add_argument("--raw", type=Path, help="copy this existing export (made by prrt synth with the same"
                        " --patients) instead of generating one; it is left untouched")
    parser.add_argument("--no-refresh", action="store_true", help="skip the prrt refresh step")
    parser.add_argument("--markdown", action="store_true", help="print the result table as markdown")
    parser.add_argument("--json", type=Path, help="also write all measurements to this JSON file")
    args = parser.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="prrt-bench-"))
    raw = work / "raw"
    if raw.exists():
        shutil.rmtree(raw)
    raw.mkdir(parents=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    results: dict = {"n_patients": args.patients, "messy": args.messy, "machine": _machine(),
                     # the refresh's DuckDB ceiling (dagster_project/resources.py, dbt/profiles.yml)
                     "duckdb_memory_limit": os.environ.get("PRRT_DUCKDB_MEMORY_LIMIT", "3GB")}
    try:
        if args.raw:
            # a copy: the incremental step adds a new day's files to the export folder
            print(f"copying the export {args.raw} into {raw} ...", file=sys.stderr, flush=True)
            for source in sorted(args.raw.iterdir()):
                if source.is_file():
                    shutil.copy2(source, raw / source.name)
            gen = _count_rows(raw)
        else:
            print(f"generating {args.patients:,d} patients into {raw} ...", file=sys.stderr, flush=True)
            gen, _ = _run([sys.executable, "-c", _GENERATE, str(args.patients), str(raw), str(args.seed),
                           str(args.sites), "1" if args.messy else "0"], env)
            if gen["rc"] != 0:
                print(gen["stderr"], file=sys.stderr)
                return 1
            gen["rows"] = json.loads((raw / "_bench_counts.json").read_text())
            (raw / "_bench_counts.json").unlink()
        counts = gen.pop("rows")
        results["rows"] = counts["rows"]
        results["generate"] = {"in_process_s": counts["generate_s"], **{k: v for k, v in gen.items() if k != "stderr"}}
        results["export_mb"] = sum((raw / f).stat().st_size for f in FILES) / 2**20

        print("floor: DuckDB read_csv -> typed tables in a fresh file ...", file=sys.stderr, flush=True)
        floor_db = work / "floor.duckdb"
        floor_db.unlink(missing_ok=True)
        floor, out = _run([sys.executable, "-c", _FLOOR, str(raw), str(floor_db), json.dumps(_TYPES)], env)
        if floor["rc"] != 0:
            print(floor["stderr"], file=sys.stderr)
            return 1
        inner = json.loads(out.strip().splitlines()[-1])
        results["floor"] = {"in_process_s": inner["floor_s"], "rows": inner["rows"],
                            **{k: v for k, v in floor.items() if k != "stderr"}}

        script = None if args.no_refresh else _prrt_script()
        if script is None:
            reason = "--no-refresh" if args.no_refresh else (
                f"no working `prrt refresh` next to {sys.executable} (console script missing or without refresh)")
            print(f"refresh: SKIPPED ({reason})", file=sys.stderr)
            results["refresh"] = {"skipped": reason}
        else:
            warehouse = work / "warehouse.duckdb"
            warehouse.unlink(missing_ok=True)
            print(f"refresh: {script} refresh --raw {raw} --warehouse {warehouse} ...", file=sys.stderr, flush=True)
            refresh, out = _run([str(script), "refresh", "--raw", str(raw), "--warehouse", str(warehouse), "--allow-development-key"], env)
            results["refresh"] = {k: v for k, v in refresh.items() if k != "stderr"}
            if refresh["rc"] == 0:
                results["refresh"]["profile"] = _profile(warehouse)
            if refresh["rc"] != 0:
                print(out[-4000:], refresh["stderr"][-4000:], sep="\n", file=sys.stderr)
                print(f"refresh: FAILED with exit code {refresh['rc']}", file=sys.stderr)
            else:
                # the nightly case: a new day's files for ~1% of living patients, then a refresh
                day = _day_after_export(raw)
                print(f"incremental: new day's files ({day}) + {script} refresh ...", file=sys.stderr, flush=True)
                new_day = subprocess.run([str(script), "synth-new-day", str(raw), "--day", day, "--share", "0.01"],
                                         capture_output=True, text=True, check=True)
                results["new_day_rows"] = {line.split()[0]: int(line.split()[1].replace(",", ""))
                                           for line in new_day.stdout.splitlines() if line.strip()}
                incremental, out = _run([str(script), "refresh", "--raw", str(raw), "--warehouse", str(warehouse), "--allow-development-key"], env)
                results["incremental"] = {k: v for k, v in incremental.items() if k != "stderr"}
                if incremental["rc"] == 0:
                    results["incremental"]["profile"] = _profile(warehouse)
                if incremental["rc"] != 0:
                    print(out[-4000:], incremental["stderr"][-4000:], sep="\n", file=sys.stderr)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    rows = results["rows"]
    table = [
        ("patients (N)", f"{args.patients:,d}" + (" (messy)" if args.messy else "")),
        *[(f"rows {f}", f"{rows[f]:,d}") for f in FILES],
        ("rows total", f"{sum(rows.values()):,d}"),
        ("export size", f"{results['export_mb']:,.0f} MB"),
        *([("export", f"copied from {args.raw}")] if args.raw else [
            ("generate time", f"{results['generate']['in_process_s']:.1f} s "
                              f"(process {results['generate']['wall_s']:.1f} s)"),
            ("generate peak RSS", f"{results['generate']['tree_peak_mb']:,.0f} MB")]),
        ("floor time (DuckDB read_csv, typed)", f"{results['floor']['in_process_s']:.2f} s "
                                                f"(process {results['floor']['wall_s']:.2f} s)"),
        ("floor peak RSS", f"{results['floor']['tree_peak_mb']:,.0f} MB"),
    ]
    refresh = results["refresh"]
    if "skipped" in refresh:
        table.append(("refresh", f"skipped: {refresh['skipped']}"))
    else:
        ok = refresh["rc"] == 0
        ratio = refresh["wall_s"] / results["floor"]["wall_s"]
        table += [
            ("refresh time (prrt refresh)", f"{refresh['wall_s']:.1f} s" + ("" if ok else f" (FAILED, exit {refresh['rc']})")),
            ("ratio refresh / floor", f"{ratio:.1f}x (process wall times)" if ok else "n/a (refresh failed)"),
            ("refresh peak RSS (tree, sampled)", f"{refresh['tree_peak_mb']:,.0f} MB"),
            ("refresh max RSS (largest process)", f"{refresh['maxrss_mb']:,.0f} MB"),
        ]
        incremental = results.get("incremental")
        if incremental:
            new_rows = sum(results["new_day_rows"].values())
            table += [
                ("new day's rows", f"{new_rows:,d} in {len(results['new_day_rows'])} files"),
                ("incremental refresh time", f"{incremental['wall_s']:.1f} s"
                 + (f" ({incremental['wall_s'] / refresh['wall_s']:.0%} of full)" if incremental["rc"] == 0
                    else f" (FAILED, exit {incremental['rc']})")),
                ("incremental peak RSS (tree, sampled)", f"{incremental['tree_peak_mb']:,.0f} MB"),
            ]
            profile = incremental.get("profile")
            if profile:
                steps = [(step, seconds) for step, seconds in profile["steps"] if seconds >= 0.5]
                table += [
                    ("incremental steps", ", ".join(f"{step} {seconds:.1f} s" for step, seconds in steps)),
                    ("incremental outside those steps", f"{incremental['wall_s'] - sum(s for _, s in profile['steps']):.1f} s"
                                                        " (start-up, imports, publication, Dagster)"),
                    ("incremental dbt invocations", f"{profile['dbt']['invocations']}, "
                                                    f"{profile['dbt']['full_parses']} parsing the whole project"),
                ]
    m = results["machine"]
    table += [
        ("machine", f"{m['cpu']}, {m['cpu_count']} CPUs, {m['ram_gb']} GB RAM, {m['os']}"),
        ("versions", f"Python {m['python']}, DuckDB {m['duckdb']}, pyarrow {m['pyarrow']}, numpy {m['numpy']}"),
    ]
    print(_table(table, args.markdown))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if "skipped" in refresh or refresh["rc"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
