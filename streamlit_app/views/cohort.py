"""Cohort: who was treated, with what, and how they did (the paper's Table 1)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from prrt.analytics.cohort import PATIENT_COLUMNS, TREATED_COLUMNS, CohortSummary, MedianRange, summarise_counts
from prrt.analytics.frequency import frequency_table
from prrt.analytics.survival import MedianSurvival
from streamlit_app import charts, data, filters
from streamlit_app.medians import endpoint_median, median_text

# Table 1: dim_patient column -> readable label, in display order
TABLE_1 = {
    "patient": "Patient",
    "sex": "Sex",
    "age_at_first_cycle": "Age",
    "primary_site": "Primary site",
    "metastatic_sites": "Metastases",
    "baseline_imaging": "Baseline imaging",
    "krenning_score": "Krenning score",
    "prior_surgery": "Surgery",
    "prior_radiotherapy": "Radiotherapy",
    "prior_chemotherapy": "Chemotherapy",
    "hypertension": "Hypertension",
    "diabetes": "Diabetes",
    "first_cycle_date": "First cycle",
    "n_cycles": "Cycles",
    "cumulative_activity_gbq": "Cumulative activity (GBq)",
    "cga_pre_ng_ml": "CgA before (ng/mL)",
    "cga_post_ng_ml": "CgA after (ng/mL)",
    "ecog_pre": "ECOG before",
    "ecog_post": "ECOG after",
    "kps_pre": "KPS before",
    "kps_post": "KPS after",
    "best_overall_response": "Best response",
    "confirmed_best_overall_response": "Best response (confirmed)",
    "worst_ctcae_grade": "Worst CTCAE grade",
    "os_months": "OS (months)",
    "vital_status": "Vital status",
    "patient_key": "Patient key",
}

COUNTED = {
    "Sex": "sex",
    "Primary site": "primary_site",
    "Metastases": "metastatic_sites",
    "Baseline imaging": "baseline_imaging",
    "Krenning score": "krenning_score",
    "Surgery": "prior_surgery",
    "Radiotherapy": "prior_radiotherapy",
    "Chemotherapy": "prior_chemotherapy",
    "Hypertension": "hypertension",
    "Diabetes": "diabetes",
    "Best response": "best_overall_response",
}
# the paper's Table 1 "CgA (pre- and post-treatment)": dim_patient column -> summary label
CHROMOGRANIN_A = {"cga_pre_ng_ml": "Chromogranin A before (ng/mL)", "cga_post_ng_ml": "Chromogranin A after (ng/mL)"}
MAX_TABLE_ROWS = 5_000  # Table 1 shows this many patients; its CSV has every one


@dataclass
class CohortPage:
    summary: CohortSummary
    os_median: MedianSurvival | None
    pfs_median: MedianSurvival | None
    counts: pd.DataFrame
    medians: pd.DataFrame
    table_1: pd.DataFrame  # the first MAX_TABLE_ROWS patients (all, when the cohort is smaller)


def load(cohort: filters.Cohort) -> CohortPage:
    """Everything the page shows, from per-column patient counts of the selection (a GROUP BY
    each in the warehouse: no row per patient) and Table 1's first rows."""
    selected = cohort.filters
    counts = {c: data.value_counts(c, selected)
              for c in dict.fromkeys([*PATIENT_COLUMNS, *COUNTED.values(), *CHROMOGRANIN_A])}
    treated = {c: data.value_counts(c, selected, treated=True) for c in TREATED_COLUMNS}
    summary = summarise_counts(cohort.n, counts, treated)
    os_median, pfs_median = (endpoint_median(endpoint, selected) for endpoint in ("OS", "PFS"))

    frequencies = frequency_table(
        counts, COUNTED, separators={"metastatic_sites": ","},
        orders={"best_overall_response": ["CR", "PR", "SD", "PD"], "sex": ["F", "M"]},
    )
    frequencies["level"] = [
        filters.label(COUNTED[v], level) if COUNTED[v] in filters.VALUE_LABELS
        else _site(level) if v == "Metastases" else level
        for v, level in zip(frequencies["variable"], frequencies["level"], strict=True)
    ]

    def row(label: str, value, n: int) -> dict:
        if value is None:
            return {"Characteristic": label, "Patients": n, "Median": None, "Minimum": None, "Maximum": None}
        return {"Characteristic": label, "Patients": n, "Median": value.median, "Minimum": value.minimum,
                "Maximum": value.maximum}

    def present(values: pd.Series) -> int:  # patients with a value
        return int(values[values.index.notna()].sum())

    medians = pd.DataFrame([
        row("Age at first cycle (years)", summary.age, present(counts["age_at_first_cycle"])),
        row("Cycles", summary.cycles, present(treated["n_cycles"])),
        row("Cumulative activity (GBq)", summary.cumulative_activity_gbq, present(treated["cumulative_activity_gbq"])),
        *(row(label, MedianRange.of_counts(counts[column]), present(counts[column]))
          for column, label in CHROMOGRANIN_A.items()),
    ])
    table = table_1(data.patients(selected, _TABLE_1_COLUMNS, limit=MAX_TABLE_ROWS))
    return CohortPage(summary, os_median, pfs_median, frequencies, medians, table)


_TABLE_1_COLUMNS = tuple(c for c in TABLE_1 if c != "patient")


def table_1(patients: pd.DataFrame) -> pd.DataFrame:
    """Table 1 (readable labels) of dim_patient rows."""
    table = patients.assign(patient=charts.short_key(patients["patient_key"]).to_numpy())
    table = table[[c for c in TABLE_1 if c in table]].copy()
    for column, labels in filters.VALUE_LABELS.items():
        if column in table:
            table[column] = table[column].map(labels).fillna(table[column])
    if "metastatic_sites" in table:  # few distinct combinations: label each once
        sites = table["metastatic_sites"].dropna().unique()
        table["metastatic_sites"] = table["metastatic_sites"].map(
            {v: ", ".join(_site(x) for x in v.split(",")) for v in sites})
    if "vital_status" in table:
        table["vital_status"] = table["vital_status"].str.capitalize()
    table["os_months"] = table["os_months"].round(1)
    return table.rename(columns=TABLE_1)


def _site(code: str) -> str:
    """'lymph_node' -> 'Lymph node'."""
    code = code.strip()
    return code.replace("_", " ").capitalize() if code != "missing" else code


def _range(value) -> str:
    return str(value) if value is not None else "–"


def main() -> None:
    st.title("Cohort")
    cohort = filters.cohort()
    page = load(cohort)
    s = page.summary

    refreshed = data.last_refresh()
    if not refreshed.empty:
        st.caption(f"Warehouse published {refreshed['published_at'].iloc[0]:%Y-%m-%d %H:%M} UTC "
                   f"from {refreshed['raw_dir'].iloc[0]}")

    c = st.columns(4)
    c[0].metric("Patients", f"{s.n_patients:,}")
    c[1].metric("Female / male", f"{s.sex_counts.get('F', 0):,} / {s.sex_counts.get('M', 0):,}")
    c[2].metric("Median age, years (range)", _range(s.age))
    c[3].metric("Deaths", f"{s.deaths:,}")
    c = st.columns(3)
    c[0].metric("Median cycles (range)", _range(s.cycles))
    c[1].metric("Median cumulative activity, GBq (range)", _range(s.cumulative_activity_gbq))
    c = st.columns(3)
    c[0].metric("ECOG median before → after",
                f"{s.ecog_pre:g} → {s.ecog_post:g}" if s.ecog_pre is not None and s.ecog_post is not None else "–")
    c[1].metric("KPS median before → after",
                f"{s.kps_pre:g} → {s.kps_post:g}" if s.kps_pre is not None and s.kps_post is not None else "–")
    c = st.columns(3)
    c[0].metric("Median OS, months (95% CI, log-log)", median_text(page.os_median),
                help="Kaplan-Meier; death from the first cycle (marts.dim_patient os_months, os_event)")
    c[1].metric("Median PFS, months (95% CI, log-log)", median_text(page.pfs_median),
                help="Kaplan-Meier; progression (RECIST 1.1 on CT/MRI) or death from the first cycle "
                     "(marts.fct_time_to_event, endpoint PFS)")

    left, right = st.columns([3, 2])
    with left:
        st.subheader("Best overall response (RECIST 1.1, unconfirmed)")
        bor = page.counts[page.counts["variable"] == "Best response"].copy()
        bor["label"] = [f"{n:,} ({p:.1f}%)" for n, p in zip(bor["n"], bor["pct"], strict=True)]
        if bor["n"].sum() == 0:
            st.info("No best overall response recorded for these patients.")
        else:
            chart = charts.counts_bar(bor, "level", order=[*charts.RESPONSE_ORDER, "missing"],
                                      colour=charts.response_scale(bor["level"]), label="label")
            charts.show(chart, "best_response")
    with right:
        st.subheader("Medians and ranges")
        charts.table(page.medians, "cohort_medians")
    st.subheader("Counts")
    charts.table(page.counts.rename(columns={"variable": "Characteristic", "level": "Level", "n": "Patients",
                                             "pct": "%"}), "cohort_counts", height=300)

    st.subheader("Table 1: one row per patient")
    shown = (f" The first {len(page.table_1):,} of {cohort.n:,} patients (by first cycle) are shown; the CSV has all."
             if len(page.table_1) < cohort.n else "")
    st.caption("Sort by clicking a column header. Patient is the start of the pseudonymous patient key." + shown)
    charts.table(
        page.table_1, "table_1",
        csv=(lambda: table_1(data.patients(cohort.filters, _TABLE_1_COLUMNS))) if shown else None,
        column_config={
            "Cumulative activity (GBq)": st.column_config.NumberColumn(format="%.2f"),
            "OS (months)": st.column_config.NumberColumn(format="%.1f"),
            "First cycle": st.column_config.DateColumn(format="YYYY-MM-DD"),
        },
    )


if __name__ == "__main__":
    main()
