"""Toxicity: CTCAE v4.03 grades (the paper's Table 2), a grade heatmap, lab trajectories, one patient's labs."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from prrt.analytics import toxicity_summary, worst_grade_counts
from prrt.analytics.labs import monthly_quartiles, value_limits
from streamlit_app import charts, data, filters

MAX_HEATMAP_PATIENTS = 150
MAX_LINES = 30  # above this many patients, trajectories are drawn as a monthly median and IQR
MAX_PATIENT_CHOICES = 2_000

ANALYTE_NAMES = {
    "hemoglobin": "Haemoglobin", "wbc": "White blood cells", "platelets": "Platelets",
    "neutrophils": "Neutrophils", "lymphocytes": "Lymphocytes", "creatinine": "Creatinine", "ast": "AST",
    "alt": "ALT", "bilirubin": "Bilirubin", "albumin": "Albumin", "chromogranin_a": "Chromogranin A",
}


@dataclass
class ToxicityPage:
    n_treated: int  # the selection's patients with at least one cycle
    table_2: pd.DataFrame  # toxicity_summary output (terms with a grade >= 1)
    counts: pd.DataFrame  # data.toxicity_grade_counts: the treated patients by term, baseline and worst grade >= 1


def load(
    cohort: filters.Cohort, counts: pd.DataFrame, assessed: pd.DataFrame, *, treatment_emergent_only: bool = False
) -> ToxicityPage:
    """Table 2 over the selection's treated patients.

    ``counts``: data.toxicity_grade_counts() of the same filters as ``cohort`` (counted in the
    warehouse, not read a row per patient) — patients without any grade >= 1 add nothing to
    the counts, only to N. So toxicity_summary's own n_assessed (from the grade >= 1 counts) is
    replaced by ``assessed`` (data.toxicity_assessed(): counted in the warehouse over all rows).
    """
    n_treated = data.patient_count(cohort.filters, treated=True)
    if not n_treated or not len(counts):
        return ToxicityPage(n_treated, pd.DataFrame(), counts)
    worst = worst_grade_counts(counts, treatment_emergent_only=treatment_emergent_only)
    table = toxicity_summary(worst, n_treated)
    table["n_assessed"] = table["ctcae_term"].map(assessed.set_index("ctcae_term")["n_assessed"]).fillna(0)
    return ToxicityPage(n_treated, table.astype({"n_assessed": "int64"}), counts)


def readable_table_2(
    table: pd.DataFrame, assessed: pd.DataFrame, n: int, *, all_terms: bool
) -> pd.DataFrame:
    """Labelled Table 2; with ``all_terms``, the terms without any event are added as zero rows."""
    if table.empty:
        return table
    if all_terms:
        zeros = assessed[~assessed["ctcae_term"].isin(table["ctcae_term"])].assign(n_patients=n)
        table = pd.concat([table, zeros], ignore_index=True).fillna(0) if len(zeros) else table
    shown = table if all_terms else table[table["any_grade_n"] > 0]
    columns = {"ctcae_term": "CTCAE term", "n_patients": "N", "n_assessed": "Assessed"}
    for g in (1, 2, 3, 4):
        columns[f"grade_{g}_n"] = f"Grade {g}"
        columns[f"grade_{g}_pct"] = f"Grade {g} (%)"
    columns.update({"any_grade_n": "Any grade", "any_grade_pct": "Any grade (%)",
                    "grade_3plus_n": "Grade ≥ 3", "grade_3plus_pct": "Grade ≥ 3 (%)"})
    out = shown[list(columns)].rename(columns=columns).reset_index(drop=True)
    counts = [c for c in out.columns if not c.endswith("(%)") and c != "CTCAE term"]
    return out.astype({c: "int64" for c in counts})


def heatmap_frame(toxicity: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Cells (patient, ctcae_term, worst_grade) of graded patient x term pairs, worst patients first.

    ``toxicity``: every fct_toxicity row of the patients (data.toxicity_for_patients).
    """
    graded = toxicity.dropna(subset=["worst_grade"])[["patient_key", "ctcae_term", "worst_grade"]].copy()
    graded["worst_grade"] = graded["worst_grade"].astype(int)
    worst = graded.groupby("patient_key")["worst_grade"].max().reset_index()
    order_keys = worst.sort_values(["worst_grade", "patient_key"], ascending=[False, True])["patient_key"]
    graded["patient"] = charts.short_key(graded["patient_key"]).to_numpy()
    return graded, list(charts.short_key(order_keys))


def grade_counts(counts: pd.DataFrame) -> pd.DataFrame:
    """Patients by CTCAE term and worst grade (>= 1): ctcae_term, worst_grade, n.

    ``counts``: ToxicityPage.counts (by term, baseline and worst grade; summed over baseline)."""
    worst = counts.dropna(subset=["worst_grade"]).astype({"worst_grade": int, "n": "int64"})
    return worst.groupby(["ctcae_term", "worst_grade"])["n"].sum().reset_index()


def cycle_marks(median_days: pd.DataFrame) -> pd.DataFrame:
    """Vertical markers at the median time of each cycle: month, label."""
    return pd.DataFrame({
        "month": charts.months(median_days["median_day"].astype(float)),
        "label": [f"C{int(k)}" for k in median_days["cycle_number"]],
    })


@dataclass
class LabView:
    lines: pd.DataFrame | None  # patient, month, value (small cohorts)
    summary: pd.DataFrame | None  # month, q1, median, q3, n (large cohorts)
    n_samples: int
    sample_lln: float | None  # median of the samples' own limits
    sample_uln: float | None
    values_range: pd.Series  # values (or percentiles) that the y axis must show


def lab_view(analyte: str, cohort: filters.Cohort) -> LabView:
    """One analyte over the cohort: each patient's values for a few patients, else monthly quartiles."""
    if cohort.n <= MAX_LINES:
        keys = data.patients(cohort.filters, ("patient_key",))["patient_key"]
        labs = data.lab_results_for_patients(analyte, tuple(keys))
        labs = labs.dropna(subset=["value", "days_from_first_cycle"])
        lines = labs[["patient_key", "value"]].copy()
        lines["month"] = charts.months(labs["days_from_first_cycle"].astype(float))
        lines["patient"] = charts.short_key(lines["patient_key"]).to_numpy()
        return LabView(lines, None, len(labs), labs["lln"].median(), labs["uln"].median(), labs["value"])
    counts = data.lab_value_counts(analyte, cohort.filters)
    limits = value_limits(counts)
    return LabView(None, monthly_quartiles(counts), int(limits["n"]), limits["lln"], limits["uln"],
                   pd.Series([limits["p01"], limits["p99"]], dtype=float))


def default_limits(ranges: pd.DataFrame, analyte: str, sex: str | None) -> tuple[float | None, float | None, str]:
    """(lln, uln, description) of the default reference range (sex-specific where the seed is)."""
    r = ranges[ranges["analyte"] == analyte]
    if r["sex"].notna().any():
        r = r[r["sex"] == sex]
    if r.empty:
        return None, None, "no default range"
    row = r.iloc[0]
    return row["lln"], row["uln"], "default reference range" + (f" ({row['sex']})" if pd.notna(row["sex"]) else "")


def patient_lab_chart(labs: pd.DataFrame, cycles: pd.DataFrame, criteria: pd.DataFrame) -> alt.TopLevelMixin | None:
    """One patient: a small chart per analyte with bands from each sample's limits and the cycles
    (None when no sample has a value and a time since the first cycle)."""
    marks = pd.DataFrame({
        "month": charts.months(cycles["days_from_first_cycle"].astype(float)),
        "label": [f"C{int(k)}" for k in cycles["cycle_number"]],
    })
    x_end = float(np.nanmax([charts.months(labs["days_from_first_cycle"].astype(float)).max(),
                             marks["month"].max() if len(marks) else 0.0, 0.0]))
    panels = []
    for analyte, rows in labs.groupby("analyte", sort=True):
        rows = rows.dropna(subset=["value", "days_from_first_cycle"]).copy()
        if rows.empty:
            continue
        rows["month"] = charts.months(rows["days_from_first_cycle"].astype(float))
        rows["patient"] = "value"
        thresholds_for = functools.partial(data.ctcae_thresholds, analyte)
        first = rows.iloc[0]
        thresholds = thresholds_for(first["lln"], first["uln"], first["baseline_value"])
        y_domain = charts.value_domain(rows["value"], thresholds)
        graded = (criteria["analyte"] == analyte).any()
        bands = charts.sample_bands(thresholds_for, rows, y_domain, x_end) if graded else None
        panels.append(charts.lab_trajectory(
            lines=rows[["patient", "month", "value"]], bands=bands, cycles=marks, y_domain=y_domain,
            unit=str(first["unit"]), title=ANALYTE_NAMES.get(analyte, analyte), width=330, height=190,
        ))
    return alt.concat(*panels, columns=2) if panels else None


def main() -> None:
    st.title("Toxicity")
    cohort = filters.cohort()
    emergent = st.toggle("Treatment-emergent only (worse than the patient's baseline grade)", value=False,
                         key="toxicity_emergent")
    assessed = data.toxicity_assessed(cohort.filters)
    page = load(cohort, data.toxicity_grade_counts(cohort.filters), assessed, treatment_emergent_only=emergent)
    n_treated = page.n_treated
    if n_treated == 0:
        st.info("None of these patients received a cycle.")
        st.stop()
    criteria = data.ctcae_criteria()

    st.subheader("Table 2: patients by worst post-baseline CTCAE grade")
    all_terms = st.toggle("Show terms without any grade ≥ 1", value=False, key="toxicity_all_terms")
    table = readable_table_2(page.table_2, assessed, n_treated, all_terms=all_terms)
    st.caption(f"CTCAE v4.03 graded on laboratory values; each patient counted once per term at the worst grade. "
               f"N = {n_treated:,} treated patients; Assessed: those with a gradable value after the first cycle.")
    if table.empty:
        st.info("No grade ≥ 1 toxicity for these patients.")
    else:
        charts.table(table, "table_2")

    st.subheader("Worst grade by patient")
    if n_treated <= MAX_HEATMAP_PATIENTS:
        treated = data.patients(cohort.filters, ("patient_key",), treated=True)["patient_key"]
        cells, order = heatmap_frame(data.toxicity_for_patients(tuple(treated)))
        if cells.empty:
            st.info("No graded laboratory result after the first cycle for these patients.")
        else:
            st.caption("0 = graded and normal; blank = no graded sample after the first cycle.")
            charts.show(charts.grade_heatmap(cells, patient_order=order), "grade_heatmap")
    elif page.counts.empty:
        st.info("No grade ≥ 1 toxicity for these patients.")
    else:
        st.caption(f"{n_treated:,} treated patients: too many for one row each, so the cells count patients by "
                   "term and worst grade.")
        charts.show(charts.grade_count_heatmap(grade_counts(page.counts)), "grade_counts")

    st.subheader("Laboratory trajectories")
    analytes = data.lab_analytes()
    if analytes.empty:
        st.info("No laboratory results in the warehouse.")
        st.stop()
    units = dict(zip(analytes["analyte"], analytes["unit"], strict=True))
    c = st.columns([2, 2, 1])
    analyte = c[0].selectbox("Analyte", list(units), format_func=lambda a: f"{ANALYTE_NAMES.get(a, a)} ({units[a]})",
                             index=list(units).index("hemoglobin") if "hemoglobin" in units else 0,
                             key="toxicity_analyte")
    source = c[1].radio("LLN/ULN for the grade bands", ["Default reference range", "Per-sample LLN/ULN"],
                        horizontal=True, key="toxicity_limits")
    view = lab_view(analyte, cohort)
    crit = criteria[criteria["analyte"] == analyte]
    if view.n_samples == 0:
        st.info(f"No {ANALYTE_NAMES.get(analyte, analyte)} results for these patients.")
    else:
        if source == "Per-sample LLN/ULN":
            lln, uln, described = view.sample_lln, view.sample_uln, "median of the samples' own LLN/ULN"
        else:
            ranges = data.lab_reference_ranges()
            sex = None
            if ranges.loc[ranges["analyte"] == analyte, "sex"].notna().any():
                present = data.value_counts("sex", cohort.filters)
                sexes = sorted(present[present.index.notna() & (present > 0)].index) or ["F", "M"]
                sex = sexes[0] if len(sexes) == 1 else c[2].selectbox(
                    "Range for sex", sexes, format_func=lambda v: filters.label("sex", v), key="toxicity_range_sex")
            lln, uln, described = default_limits(ranges, analyte, sex)
        thresholds = data.ctcae_thresholds(analyte, lln, uln)
        y_domain = charts.value_domain(view.values_range, thresholds)
        bands = charts.ctcae_bands(thresholds, *y_domain)
        term = crit["ctcae_term"].iloc[0] if len(crit) else None
        limits = ", ".join(f"{name} {v:g}" for name, v in (("LLN", lln), ("ULN", uln)) if v is not None and pd.notna(v))
        st.caption(
            (f"Bands: CTCAE v4.03 *{term}* grades from the {described} ({limits})." if term
             else "Not CTCAE-graded: no bands.")
            + " Dashed lines: median time of each cycle."
            + ("" if view.lines is not None else f" {cohort.n:,} patients ({view.n_samples:,} samples): monthly "
               "median and interquartile range (months with ≥ 3 samples).")
        )
        chart = charts.lab_trajectory(lines=view.lines, summary=view.summary, bands=bands,
                                      cycles=cycle_marks(data.median_cycle_days(cohort.filters)),
                                      y_domain=y_domain, unit=units[analyte])
        charts.show(chart, f"lab_{analyte}")

    st.subheader("One patient")
    if n_treated <= MAX_PATIENT_CHOICES:
        treated = data.patients(cohort.filters, ("patient_key", "sex", "age_at_first_cycle", "best_overall_response"),
                                treated=True)
        described = {r.patient_key: f"{r.patient_key[:8]} · {filters.label('sex', r.sex)}, {r.age_at_first_cycle}, "
                                    f"{r.best_overall_response}" for r in treated.itertuples()}
        key = st.selectbox("Patient", list(described), format_func=described.get, index=None,
                           placeholder="Choose a patient (type to search)", key="toxicity_patient")
    else:
        typed = st.text_input("Patient key (or its first characters)", key="toxicity_patient_key",
                              placeholder=f"{n_treated:,} treated patients: type a key").strip()
        key = data.treated_patient_starting(typed, cohort.filters) if typed else None
        if typed and key is None:
            st.info("No treated patient in the filtered cohort has a key starting like that.")
    if key:
        labs = data.lab_results_for_patient(key)
        chart = patient_lab_chart(labs, data.treatment_cycles_for_patient(key), criteria) if len(labs) else None
        if chart is None:
            st.info("No laboratory result with a date relative to the first cycle for this patient.")
        else:
            st.caption("Bands follow each sample's own LLN/ULN (and, for creatinine, the patient's baseline). "
                       "Dashed lines: this patient's cycles.")
            charts.show(chart, f"labs_{key[:8]}", stretch=False)
        if len(labs):
            shown = labs[["sample_date", "days_from_first_cycle", "analyte", "value", "unit", "lln", "uln",
                          "ctcae_term", "ctcae_grade", "is_baseline"]]
            charts.table(shown.rename(columns={
                "sample_date": "Date", "days_from_first_cycle": "Day", "analyte": "Analyte", "value": "Value",
                "unit": "Unit", "lln": "LLN", "uln": "ULN", "ctcae_term": "CTCAE term", "ctcae_grade": "Grade",
                "is_baseline": "Baseline"}), f"labs_{key[:8]}_table",
                column_config={"Date": st.column_config.DateColumn(format="YYYY-MM-DD")})

if __name__ == "__main__":
    main()
