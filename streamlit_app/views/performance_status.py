"""Performance status: ECOG and KPS before vs after treatment, paired (exact Wilcoxon signed-rank)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from prrt.analytics import PairedComparison, paired_wilcoxon
from streamlit_app import charts, filters

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


def load(patients: pd.DataFrame) -> dict[str, PairedComparison]:
    return {m.name: paired_wilcoxon(patients[m.before], patients[m.after]) for m in MEASURES}


def slope_frames(patients: pd.DataFrame, m: Measure) -> tuple[pd.DataFrame, pd.DataFrame]:
    complete = patients.dropna(subset=[m.before, m.after])
    if len(complete) <= MAX_LINES:
        pairs = charts.jitter_pairs(complete, m.before, m.after, step=m.jitter, higher_is_better=m.higher_is_better)
    else:
        pairs = charts.aggregate_pairs(complete, m.before, m.after, higher_is_better=m.higher_is_better)
    medians = pd.DataFrame({"phase": ["Before", "After"],
                            "median": [complete[m.before].median(), complete[m.after].median()]})
    return pairs, medians


def _p(value: float) -> str:
    return "–" if pd.isna(value) else (f"{value:.4f}" if value >= 0.0001 else f"{value:.1e}")


def main() -> None:
    st.title("Performance status")
    cohort = filters.cohort()
    results = load(cohort.patients)
    st.caption("Before = the last assessment on or before the first cycle (at most 60 days earlier); after = the "
               "last assessment at least 28 days after the last cycle. ECOG: lower is better; KPS: higher is better.")

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
            pairs, medians = slope_frames(cohort.patients, m)
            if "n" in pairs:
                st.caption("One line per before → after combination; line width: patients.")
            charts.show(charts.slope_chart(pairs, medians, measure=m.name, y_domain=m.domain,
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
