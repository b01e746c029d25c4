"""Performance status: ECOG and KPS before vs after treatment, paired (exact Wilcoxon signed-rank)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from prrt.analytics import PairedComparison, paired_wilcoxon
from prrt.analytics.cohort import weighted_median
from streamlit_app import charts, data, filters

MAX_LINES = 300  # above this many patients, one line per before/after combination, width = patients
METHODS = {
    "exact": "exact signed-rank distribution",
    "exact-conditional": "exact conditional distribution (ties and zeros)",
    "asymptotic": "normal approximation",
}


@dataclass(frozen=True)
class Measure:
    name: str
    before: str
    after: str
    higher_is_better: bool
    domain: tuple[float, float]
    jitter: float


MEASURES = (
    Measure("ECOG", "ecog_pre", "ecog_post", False, (-0.4, 5.4), 0.4),
    Measure("KPS", "kps_pre", "kps_post", True, (-4, 104), 5.0),
)


def pairs(cohort: filters.Cohort, m: Measure) -> pd.DataFrame:
    """The selection's patients by (before, after) score: before, after, n (missing values included).
    Scores are coarse, so this is a few dozen rows whatever the cohort's size."""
    return data.patient_counts((m.before, m.after), cohort.filters)


def load(cohort: filters.Cohort) -> dict[str, PairedComparison]:
    results = {}
    for m in MEASURES:
        counts = pairs(cohort, m)
        results[m.name] = paired_wilcoxon(counts[m.before], counts[m.after], weights=counts["n"])
    return results


def slope_frames(cohort: filters.Cohort, m: Measure) -> tuple[pd.DataFrame, pd.DataFrame]:
    counts = pairs(cohort, m).dropna(subset=[m.before, m.after])
    if counts["n"].sum() <= MAX_LINES:
        complete = data.patients(cohort.filters, ("patient_key", m.before, m.after)).dropna(subset=[m.before, m.after])
        pairs_frame = charts.jitter_pairs(complete, m.before, m.after, step=m.jitter,
                                          higher_is_better=m.higher_is_better)
    else:
        pairs_frame = charts.aggregate_pairs(counts, m.before, m.after, higher_is_better=m.higher_is_better)
    medians = pd.DataFrame({"phase": ["Before", "After"], "median": [
        weighted_median(counts[m.before], counts["n"]) if len(counts) else np.nan,
        weighted_median(counts[m.after], counts["n"]) if len(counts) else np.nan]})
    return pairs_frame, medians


def _p(value: float) -> str:
    return "–" if pd.isna(value) else (f"{value:.4f}" if value >= 0.0001 else f"{value:.1e}")


def main() -> None:
    st.title("Performance status")
    cohort = filters.cohort()
    results = load(cohort)
    st.caption("Before = the last assessment on or before the first cycle (at most 60 days earlier); after = the "
               "first assessment at least 90 days after the last cycle (the paper's follow-up visit \"at least three "
               "months after the final treatment session\"). ECOG: lower is better; KPS: higher is better.")

    summary = []
    for column, m in zip(st.columns(len(MEASURES)), MEASURES, strict=True):
        r = results[m.name]
        with column:
            st.subheader(m.name)
            if r.n_pairs == 0:
                st.info(f"No patient has both a before and an after {m.name}.")
                continue
            a, b = st.columns(2)
            a.metric(f"{m.name} median before → after", f"{r.median_before:g} → {r.median_after:g}")
            b.metric(f"{m.name} Wilcoxon p", _p(r.p_value),
                     help=f"Signed-rank test, two-sided, {METHODS.get(r.method, r.method)}; zero differences "
                          f"dropped, tied ranks averaged. Normal approximation: p = {_p(r.p_value_asymptotic)}.")
            improved = r.n_increased if m.higher_is_better else r.n_decreased
            worsened = r.n_decreased if m.higher_is_better else r.n_increased
            st.caption(f"{r.n_pairs:,} patients with both: {improved:,} improved, {r.n_unchanged:,} unchanged, "
                       f"{worsened:,} worsened. p: {METHODS.get(r.method, r.method)}.")
            lines, medians = slope_frames(cohort, m)
            if "n" in lines:
                st.caption("One line per before → after combination; line width: patients.")
            charts.show(charts.slope_chart(lines, medians, measure=m.name, y_domain=m.domain,
                                           reverse=not m.higher_is_better), f"{m.name.lower()}_before_after")
            summary.append({"Measure": m.name, "Patients with both": r.n_pairs, "Median before": r.median_before,
                            "Median after": r.median_after, "Improved": improved, "Unchanged": r.n_unchanged,
                            "Worsened": worsened, "W (min of W+, W−)": r.statistic, "p": r.p_value,
                            "Method": r.method, "p (normal approximation)": r.p_value_asymptotic})
    if summary:
        st.subheader("Summary")
        charts.table(pd.DataFrame(summary), "performance_status")


if __name__ == "__main__":
    main()
