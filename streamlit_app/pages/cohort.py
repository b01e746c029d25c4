"""Cohort: who was treated, with what, and how they did (the paper's Table 1)."""

import streamlit as st

from prrt.analytics.cohort import summarise_cohort
from streamlit_app import data

st.title("Cohort")

patients = data.dim_patient()
summary = summarise_cohort(patients)
overall = data.km_median().query("stratum_variable == 'all' and ci_method == 'log-log'")
refreshed = data.last_refresh()
if not refreshed.empty:
    st.caption(f"Warehouse published {refreshed['published_at'].iloc[0]:%Y-%m-%d %H:%M} UTC from {refreshed['raw_dir'].iloc[0]}")

c = st.columns(4)
c[0].metric("Patients", summary.n_patients)
c[1].metric("Female / male", f"{summary.sex_counts.get('F', 0)} / {summary.sex_counts.get('M', 0)}")
c[2].metric("Median age (range)", str(summary.age) if summary.age else "–")
c[3].metric("Deaths", summary.deaths)
c = st.columns(4)
c[0].metric("Median cycles (range)", str(summary.cycles) if summary.cycles else "–")
c[1].metric("Median cumulative activity, GBq (range)", str(summary.cumulative_activity_gbq) if summary.cumulative_activity_gbq else "–")
c[2].metric("ECOG median before → after", f"{summary.ecog_pre:g} → {summary.ecog_post:g}" if summary.ecog_pre is not None else "–")
c[3].metric("KPS median before → after", f"{summary.kps_pre:g} → {summary.kps_post:g}" if summary.kps_pre is not None else "–")
if not overall.empty:
    row = overall.iloc[0]
    st.metric("Median overall survival, months (95% CI, log-log)",
              f"{row['median_months']:.1f} ({row['ci_lower']:.1f}–{row['ci_upper']:.1f})")

st.subheader("Best overall response (RECIST 1.1, unconfirmed)")
st.bar_chart(
    patients["best_overall_response"].value_counts().reindex(["CR", "PR", "SD", "PD", "NE"]).dropna(),
    horizontal=True,
)

st.subheader("Patients")
st.dataframe(patients, hide_index=True, use_container_width=True)
