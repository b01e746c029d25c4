"""How long does each outcome page's data and analytics work take on a large warehouse?

    python benchmarks/bench_pages.py --patients 100000 [--warehouse FILE] [--keep DIR] [--markdown]

1. warehouse: reuses ``--warehouse FILE`` when it exists; otherwise writes a synthetic export
   (``prrt synth --patients N --out DIR/raw``) and refreshes it
   (``prrt refresh --raw DIR/raw --warehouse FILE``), in child processes, and reports how
   long that took. DIR is ``--keep`` or a temporary folder (deleted afterwards unless kept).
2. pages: for each page, the reads (``streamlit_app.data``) and the ``prrt.analytics`` calls
   that the page makes with its default choices, timed step by step without Streamlit
   rendering (no widgets, no Arrow serialisation, no chart rendering in the browser).
   *cold*: with ``st.cache_data`` cleared, as the first visitor after a refresh;
   *warm*: again, with the named reads served from the cache (each hit still unpickles a
   copy of the cached frame), as every later visitor. Interactions that are not part of
   a page's first view (a patient's drill-down, each stratification, the Cox models) are
   timed as their own rows. Each figure is the best of ``--repeat`` runs.

The steps mirror what the page files do (see their ``main()``); the page modules'
``load``-style functions are called, not copied.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

Steps = list[tuple[str, float]]


def _prrt() -> str:
    return str(Path(sys.executable).with_name("prrt"))


def build_warehouse(patients: int, folder: Path, warehouse: Path, seed: int) -> dict[str, float]:
    timings = {}
    raw = folder / "raw"
    for step, argv in (
        ("synth", [_prrt(), "synth", "--patients", str(patients), "--out", str(raw), "--seed", str(seed)]),
        ("refresh", [_prrt(), "refresh", "--raw", str(raw), "--warehouse", str(warehouse), "--allow-development-key"]),
    ):
        print(f"{step}: {' '.join(argv[1:])}", flush=True)
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True)
        timings[step] = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"{step} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        print(f"  {timings[step]:.1f} s", flush=True)
    return timings


# --- the pages' work -------------------------------------------------------------------


class Timer:
    def __init__(self) -> None:
        self.steps: Steps = []

    def __call__(self, label: str, function: Callable, *args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        self.steps.append((label, time.perf_counter() - start))
        return result


def page_work() -> dict[str, Callable[[Timer], None]]:
    """page name -> the page's reads and analytics with its default choices."""
    from prrt.analytics import CONF_TYPES
    from streamlit_app import charts, data, filters
    from streamlit_app.views import cohort, performance_status, response, survival, toxicity

    no_filter = filters.Filters()

    def selection(t: Timer) -> filters.Cohort:
        # the sidebar: the filters' options and the selection's count (no row per patient)
        options = t("data.patient_filter_options", data.patient_filter_options).iloc[0]
        n = t("data.patient_count", data.patient_count, no_filter) if no_filter.active else int(options["n_patients"])
        return filters.Cohort(n, int(options["n_patients"]), no_filter)

    def cohort_page(t: Timer) -> None:
        c = selection(t)
        t("data.last_refresh", data.last_refresh)
        t("cohort.load (value counts, summarise_counts, kaplan_meier, frequency_table, Table 1's first rows)",
          cohort.load, c)

    def response_page(t: Timer) -> None:
        c = selection(t)
        t("response.load (response_rates x2, thinned waterfall)", response.load, c)
        lanes = c.n if c.n <= 60 else 50
        t("response.swimmer_frames (keyed reads of 50 lanes)", response.swimmer_frames, c, lanes)

    def toxicity_page(t: Timer) -> None:
        c = selection(t)
        assessed = t("data.toxicity_assessed", data.toxicity_assessed, c.filters)
        counts = t("data.toxicity_grade_counts (grouped in SQL)", data.toxicity_grade_counts, c.filters)
        page = t("toxicity.load (toxicity_summary)", toxicity.load, c, counts, assessed)
        t("data.ctcae_criteria", data.ctcae_criteria)
        t("toxicity.readable_table_2", toxicity.readable_table_2, page.table_2, assessed, page.n_treated,
          all_terms=False)
        if page.n_treated <= toxicity.MAX_HEATMAP_PATIENTS:
            keys = data.patients(c.filters, ("patient_key",), treated=True)["patient_key"]
            t("data.toxicity_for_patients (heatmap)", data.toxicity_for_patients, tuple(keys))
        else:
            t("toxicity.grade_counts (heatmap)", toxicity.grade_counts, page.counts)
        t("data.lab_analytes", data.lab_analytes)
        ranges = t("data.lab_reference_ranges", data.lab_reference_ranges)
        view = t("toxicity.lab_view (hemoglobin)", toxicity.lab_view, "hemoglobin", c)
        t("data.value_counts (sex: the default range's choices)", data.value_counts, "sex", c.filters)
        lln, uln, _ = toxicity.default_limits(ranges, "hemoglobin", "F")
        thresholds = t("data.ctcae_thresholds (the warehouse macro)", data.ctcae_thresholds, "hemoglobin", lln, uln)
        t("charts.ctcae_bands", charts.ctcae_bands, thresholds, *charts.value_domain(view.values_range, thresholds))
        t("data.median_cycle_days", data.median_cycle_days, c.filters)

    def toxicity_patient(t: Timer) -> None:
        key = data.patients(no_filter, ("patient_key",), treated=True, limit=1)["patient_key"].iloc[0]
        labs = t("data.lab_results_for_patient", data.lab_results_for_patient, key)
        cycles = t("data.treatment_cycles_for_patient", data.treatment_cycles_for_patient, key)
        t("toxicity.patient_lab_chart (bands per sample)", toxicity.patient_lab_chart, labs, cycles,
          data.ctcae_criteria())

    def survival_page(t: Timer) -> None:
        c = selection(t)
        counts = t("survival.survival_counts (patients by time and status, grouped in SQL)",
                   survival.survival_counts, c.filters, None)
        t("survival.load (kaplan_meier, median, survival_at)", survival.load, counts, None, "log-log")
        t("data.km_median", data.km_median)
        unfiltered = t("survival.survival_counts (unfiltered check)", survival.survival_counts, None, None)
        t("survival.load (unfiltered check)", survival.load, unfiltered, None, "log-log")

    def survival_strata(t: Timer) -> None:
        c = selection(t)
        for stratum in survival.STRATA_CHOICES.values():
            if stratum is not None:
                column = stratum.variable
                counts = t(f"survival.survival_counts by {column}", survival.survival_counts, c.filters, stratum)
                t(f"survival.load by {column} (+ logrank)", survival.load, counts, column, "log-log")
        counts = survival.survival_counts(c.filters, None)
        for conf_type in CONF_TYPES[1:]:
            t(f"survival.load ({conf_type})", survival.load, counts, None, conf_type)

    def survival_cox(t: Timer) -> None:
        c = selection(t)
        prepared = t("survival.cox_input (the selection's rows, add_derived_groups)", survival.cox_input, c.filters)
        t(f"survival.cox_table ({len(survival.COX_COVARIATES)} univariable cox_univariable fits)",
          survival.cox_table, prepared)

    def performance_page(t: Timer) -> None:
        c = selection(t)
        t("performance_status.load (pair counts, paired_wilcoxon x2)", performance_status.load, c)
        for m in performance_status.MEASURES:
            t(f"performance_status.slope_frames ({m.name})", performance_status.slope_frames, c, m)

    return {
        "cohort": cohort_page,
        "response": response_page,
        "toxicity": toxicity_page,
        "survival": survival_page,
        "performance_status": performance_page,
        "toxicity: one patient (on selection)": toxicity_patient,
        "survival: each of 8 strata + 2 CI methods (on selection)": survival_strata,
        "survival: Cox models (on request above 5,000 patients)": survival_cox,
    }


def run_pages(warehouse: Path, only: list[str] | None, repeat: int = 1) -> list[dict]:
    os.environ["PRRT_WAREHOUSE"] = str(warehouse)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)  # bare-mode st.cache_data warnings
    import streamlit as st

    work = page_work()
    rows = []
    for name, function in work.items():
        if only and not any(o in name for o in only):
            continue
        colds, warms = [], []
        for _ in range(repeat):  # the best of ``repeat`` runs: a busy machine only ever adds time
            st.cache_data.clear()
            cold, warm = Timer(), Timer()
            function(cold)
            function(warm)
            colds.append(cold)
            warms.append(warm)
        cold = min(colds, key=lambda timer: sum(s for _, s in timer.steps))
        warm = min(warms, key=lambda timer: sum(s for _, s in timer.steps))
        top = max(cold.steps, key=lambda s: s[1])
        rows.append({
            "page": name,
            "cold_s": sum(s for _, s in cold.steps),
            "warm_s": sum(s for _, s in warm.steps),
            "slowest_step": top[0],
            "slowest_step_s": top[1],
            "steps_cold": cold.steps,
            "steps_warm": warm.steps,
        })
        print(f"  {name}: cold {rows[-1]['cold_s']:.2f} s, warm {rows[-1]['warm_s']:.2f} s", flush=True)
    return rows


def report(rows: list[dict], markdown: bool, verbose: bool) -> None:
    if markdown:
        print("| page | cold (s) | warm (s) | slowest step (cold) |")
        print("|---|---:|---:|---|")
        for r in rows:
            slowest = f"{r['slowest_step']} ({r['slowest_step_s']:.2f} s)"
            print(f"| {r['page']} | {r['cold_s']:.2f} | {r['warm_s']:.2f} | {slowest} |")
    else:
        width = max(len(r["page"]) for r in rows)
        print(f"\n{'page':<{width}}  {'cold s':>7}  {'warm s':>7}  slowest step (cold)")
        for r in rows:
            print(f"{r['page']:<{width}}  {r['cold_s']:7.2f}  {r['warm_s']:7.2f}  "
                  f"{r['slowest_step']} ({r['slowest_step_s']:.2f} s)")
    if verbose:
        for r in rows:
            print(f"\n{r['page']}")
            for (label, cold), (_, warm) in zip(r["steps_cold"], r["steps_warm"], strict=True):
                print(f"  {cold:7.3f}  {warm:7.3f}  {label}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000, help="synthetic patients (default 100,000)")
    parser.add_argument("--warehouse", type=Path, help="reuse this warehouse if it exists (else build it here)")
    parser.add_argument("--keep", type=Path, help="build the export and warehouse in DIR and keep them")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--page", action="append", help="only pages whose name contains this (repeatable)")
    parser.add_argument("--repeat", type=int, default=3, help="report the best of this many runs (default 3)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--verbose", action="store_true", help="print every step's cold and warm time")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)

    temporary = None
    build = {}
    warehouse = args.warehouse
    if warehouse is None or not warehouse.exists():
        folder = args.keep or Path(temporary := tempfile.mkdtemp(prefix="bench_pages_"))
        folder.mkdir(parents=True, exist_ok=True)
        warehouse = warehouse or folder / "warehouse.duckdb"
        build = build_warehouse(args.patients, folder, warehouse, args.seed)
    else:
        print(f"reusing {warehouse}")
    try:
        import duckdb

        with duckdb.connect(str(warehouse), read_only=True) as con:
            n = con.execute("SELECT count(*) FROM marts.dim_patient").fetchone()[0]
            labs = con.execute("SELECT count(*) FROM marts.fct_lab_result").fetchone()[0]
        print(f"{n:,} patients, {labs:,} lab results; timing pages (cold, then warm):", flush=True)
        rows = run_pages(warehouse, args.page, args.repeat)
        report(rows, args.markdown, args.verbose)
        if args.json:
            args.json.write_text(json.dumps({"patients": n, "lab_results": labs, "build_s": build, "pages": rows},
                                            indent=2))
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
    main()
