"""Survival: Kaplan-Meier overall survival of the filtered cohort, by stratum, with log-rank and Cox."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from prrt.analytics import (
    MEDIAN_CI_METHODS,
    add_derived_groups,
    best_response_group,
    cox_univariable,
    cycles_group,
    grade_threshold_group,
    kaplan_meier,
    logrank,
)
from prrt.analytics.cohort import weighted_median
from prrt.analytics.groups import ACTIVITY_SPLIT, median_split_labels
from prrt.analytics.survival import KaplanMeier, LogRankResult
from streamlit_app import charts, data, filters

TIME, EVENT = "os_months", "os_event"
AT_RISK_TIMES = (0, 6, 12, 18, 24, 30, 36)
TOXICITY_THRESHOLD = 2
AUTO_COX_PATIENTS = 5_000  # above this, the Cox models (seconds to fit) are fitted on request

# label -> column of dim_patient after add_derived_groups (None: the whole cohort)
STRATA: dict[str, str | None] = {
    "None": None,
    "Sex": "sex",
    "Primary site": "primary_site",
    "Baseline imaging": "baseline_imaging",
    "Krenning score": "krenning_score",
    "Cycles (≤ 3 vs ≥ 4)": "cycles_group",
    "Cumulative activity (median split)": "cumulative_activity_group",
    "Best response (CR/PR vs SD/PD)": "best_response_group",
    "Worst toxicity grade (≥ 2 vs < 2)": "toxicity_grade_group",
}

# univariable Cox covariates: column -> label
COX_COVARIATES: dict[str, str] = {
    "sex": "Sex",
    "age_at_first_cycle": "Age (per year)",
    "primary_site": "Primary site",
    "baseline_imaging": "Baseline imaging",
    "krenning_score": "Krenning score (per point)",
    "n_cycles": "Cycles (per cycle)",
    "cumulative_activity_gbq": "Cumulative activity (per GBq)",
    "ecog_pre": "ECOG before (per point)",
    "kps_pre": "KPS before (per point)",
    "best_response_group": "Best response group",
    "toxicity_grade_group": "Worst toxicity grade group",
}


@dataclass
class SurvivalPage:
    fits: dict[str, KaplanMeier]  # stratum label -> fit
    curves: pd.DataFrame  # stratum, time, survival, ci_lower, ci_upper, at_risk, events, censored
    medians: pd.DataFrame  # stratum, n, events, median, ci_lower, ci_upper, ci_method
    at_risk: pd.DataFrame  # stratum, time, at_risk
    logrank: LogRankResult | None
    n_excluded: int  # rows without time, event or stratum


def _level_label(value: object, column: str | None = None) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return filters.label(column, value) if column in filters.VALUE_LABELS else str(value)


def prepare(patients: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """dim_patient rows with the derived strata (cycles, activity, response and toxicity groups):
    the Cox models' input.

    ``events``: data.toxicity_events(TOXICITY_THRESHOLD). Only rows at or above the toxicity
    threshold can put a patient in the '>= 2' group (absent patients count as grade 0), so
    the rest of fct_toxicity is not needed.
    """
    severe = events[events["worst_grade"] >= TOXICITY_THRESHOLD]
    return add_derived_groups(patients, filters.restrict(severe, patients), toxicity_threshold=TOXICITY_THRESHOLD)


def survival_counts(cohort_filters: filters.Filters | None, stratum_column: str | None) -> pd.DataFrame:
    """Patients by (stratum, os_months, os_event) with their count ``n``: what ``load`` needs,
    grouped in the warehouse. Derived strata are derived here from their grouped source
    (groups.py's functions on a few distinct values, not a million rows), as ``prepare`` does."""
    if stratum_column == "cumulative_activity_group":  # median split at the selection's median
        activity = data.value_counts("cumulative_activity_gbq", cohort_filters)
        activity = activity[activity.index.notna() & (activity > 0)]
        if activity.empty:
            counts = data.survival_counts(cohort_filters)
            return counts.assign(**{stratum_column: None})
        median = weighted_median(activity.index.to_numpy(float), activity.to_numpy())
        counts = data.survival_counts(cohort_filters, "cumulative_activity_gbq", split_at=median)
        low, high = median_split_labels(median, **ACTIVITY_SPLIT)
        below = counts.pop("cumulative_activity_gbq")
        return counts.assign(**{stratum_column: below.map({True: low, False: high})})
    if stratum_column == "toxicity_grade_group":
        counts = data.survival_counts(cohort_filters, data.WORST_TOXICITY, toxicity_min_grade=TOXICITY_THRESHOLD)
        grade = counts.pop(data.WORST_TOXICITY)
        return counts.assign(**{stratum_column: grade_threshold_group(grade, threshold=TOXICITY_THRESHOLD)})
    derived = {"cycles_group": ("n_cycles", cycles_group), "best_response_group": ("best_overall_response",
                                                                                   best_response_group)}
    if stratum_column in derived:
        source, derive = derived[stratum_column]
        counts = data.survival_counts(cohort_filters, source)
        return counts.assign(**{stratum_column: derive(counts.pop(source))})
    return data.survival_counts(cohort_filters, stratum_column)


def at_risk_times(max_time: float) -> tuple[float, ...]:
    """0, 6, ..., 36 months, continued by 6 while anyone may still be at risk (at most 20 columns)."""
    times = list(AT_RISK_TIMES)
    while times[-1] < max_time and len(times) < 20:
        times.append(times[-1] + 6)
    return tuple(times)


def load(counts: pd.DataFrame, stratum_column: str | None, conf_type: str = "log-log") -> SurvivalPage:
    """Kaplan-Meier fits by stratum (and the log-rank test) from ``survival_counts`` (patients by
    stratum, time and status: column ``n``) or from rows of patients (each one patient)."""
    if "n" not in counts:
        counts = counts.assign(n=1)
    complete = counts.dropna(subset=[TIME, EVENT])
    if stratum_column is not None:
        complete = complete.dropna(subset=[stratum_column])
        groups = {_level_label(level, stratum_column): rows
                  for level, rows in complete.groupby(stratum_column, sort=True)}
    else:
        groups = {"All patients": complete}
    fits, curves, medians, at_risk = {}, [], [], []
    times = at_risk_times(float(complete[TIME].max()) if len(complete) else 0.0)
    for label, rows in groups.items():
        if rows.empty or rows["n"].sum() == 0:
            continue
        km = kaplan_meier(rows[TIME].astype(float), rows[EVENT].astype(float), weights=rows["n"])
        fits[label] = km
        curves.append(km.curve(_band(conf_type)).assign(stratum=label))
        m = km.median(conf_type)
        medians.append({"stratum": label, "n": km.n, "events": km.events, "median": m.median,
                        "ci_lower": m.ci_lower, "ci_upper": m.ci_upper, "ci_method": conf_type})
        at_risk.append(km.survival_at(times, _band(conf_type))[["time", "at_risk"]].assign(stratum=label))
    test = None
    if stratum_column is not None and len(fits) >= 2:
        test = logrank(complete[TIME].astype(float), complete[EVENT].astype(float),
                       complete[stratum_column].map(lambda v: _level_label(v, stratum_column)), weights=complete["n"])
    medians = pd.DataFrame(medians, columns=["stratum", "n", "events", "median", "ci_lower", "ci_upper", "ci_method"])
    medians[["median", "ci_lower", "ci_upper"]] = medians[["median", "ci_lower", "ci_upper"]].astype(float)
    n_excluded = int(counts["n"].sum() - complete["n"].sum())
    return SurvivalPage(fits, _concat(curves), medians, _concat(at_risk), test, n_excluded)


def _band(ci_method: str) -> str:
    """The pointwise band drawn with a median CI method: SPSS's S +/- 1.96 SE is R's 'plain'."""
    return "plain" if ci_method == "spss" else ci_method


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def cox_table(prepared: pd.DataFrame) -> pd.DataFrame:
    """Univariable Cox models, one per covariate (each on its complete cases)."""
    covariates = [c for c in COX_COVARIATES if c in prepared and prepared[c].notna().any()]
    return cox_univariable(prepared, TIME, EVENT, covariates)


def readable_cox(table: pd.DataFrame) -> pd.DataFrame:
    """Labelled columns; estimates of models that did not converge are blanked (not estimable)."""
    table = table.copy()
    table.loc[~table["converged"].astype(bool), ["hr", "hr_lower", "hr_upper", "p_value"]] = np.nan
    out = pd.DataFrame({
        "Covariate": table["covariate"].map(COX_COVARIATES),
        "Term": table["term"],
        "HR": table["hr"], "95% CI lower": table["hr_lower"], "95% CI upper": table["hr_upper"],
        "p (Wald)": table["p_value"], "Patients": table["n_used"], "Deaths": table["events"],
        "Converged": table["converged"],
    })
    return out.round({"HR": 3, "95% CI lower": 3, "95% CI upper": 3, "p (Wald)": 4})


def _fmt(value: float | None) -> str:
    return "NR" if value is None or pd.isna(value) else f"{value:.1f}"


def main() -> None:
    st.title("Overall survival")
    cohort = filters.cohort()

    c = st.columns([2, 1])
    choice = c[0].selectbox("Stratify by", list(STRATA), key="survival_strata")
    conf_type = c[1].selectbox("Confidence interval method", MEDIAN_CI_METHODS, key="survival_ci_method",
                               help="As R survfit's conf.type; applies to the band and the median's CI. "
                                    "'spss': the median ± 1.96 SE as SPSS's Kaplan-Meier reports it (the SE "
                                    "from Greenwood's SE of S at the median over a density estimate), to "
                                    "compare with papers that used SPSS; its band is 'plain'.")
    page = load(survival_counts(cohort.filters, STRATA[choice]), STRATA[choice], conf_type)
    if not page.fits:
        st.info("No patient with overall survival time and status (or stratum) in this selection.")
        st.stop()

    overall = page.medians.iloc[0] if STRATA[choice] is None else None
    if overall is not None:
        m = st.columns(3)
        m[0].metric(f"Median OS, months (95% CI, {conf_type})",
                    f"{_fmt(overall['median'])} ({_fmt(overall['ci_lower'])}–{_fmt(overall['ci_upper'])})")
        m[1].metric("Patients", f"{overall['n']:,}")
        m[2].metric("Deaths", f"{overall['events']:,}")
    if page.logrank is not None:
        p = page.logrank.p_value
        st.metric(f"Log-rank p ({choice.lower()})", "–" if pd.isna(p) else f"{p:.4f}",
                  help=f"χ² = {page.logrank.test_statistic:.3f}, {page.logrank.degrees_of_freedom} df")
    elif STRATA[choice] is not None:
        st.info("Only one group has data: no log-rank test.")
    if page.n_excluded:
        missing = "survival time/status" + (f" or {choice.lower()}" if STRATA[choice] else "")
        st.caption(f"{page.n_excluded:,} patients without {missing} are left out.")

    times = at_risk_times(float(page.curves["time"].max()))
    chart = charts.km_plot(page.curves, page.medians[["stratum", "median"]], page.at_risk, ticks=times)
    st.caption(f"Steps: Kaplan-Meier estimate; shaded: pointwise 95% CI ({_band(conf_type)}); +: censored; "
               "dashed: median.")
    charts.show(chart, f"km_{STRATA[choice] or 'all'}", stretch=False)

    left, right = st.columns(2)
    with left:
        st.markdown("**Median overall survival**")
        charts.table(page.medians.rename(columns={
            "stratum": "Stratum", "n": "Patients", "events": "Deaths", "median": "Median (months)",
            "ci_lower": "95% CI lower", "ci_upper": "95% CI upper", "ci_method": "CI method"}).round(2),
            f"km_median_{STRATA[choice] or 'all'}")
    with right:
        st.markdown("**Number at risk**")
        wide = page.at_risk.pivot(index="stratum", columns="time", values="at_risk")
        wide.columns = [f"{t:g} mo" for t in wide.columns]
        charts.table(wide.reset_index().rename(columns={"stratum": "Stratum"}), f"at_risk_{STRATA[choice] or 'all'}")

    if not cohort.filters.active:
        published = data.km_median()
        published = published[(published["stratum_variable"] == "all") & (published["ci_method"] == conf_type)]
        ours = load(survival_counts(None, None), None, conf_type).medians.iloc[0]
        if len(published):
            row = published.iloc[0]
            same = all(
                (pd.isna(a) and pd.isna(b)) or (pd.notna(a) and pd.notna(b) and abs(float(a) - float(b)) < 1e-9)
                for a, b in ((ours["median"], row["median_months"]), (ours["ci_lower"], row["ci_lower"]),
                             (ours["ci_upper"], row["ci_upper"]))
            )
            if same:
                st.caption("The whole-cohort median equals the published `analytics.km_median`.")
            else:
                st.warning(f"The whole-cohort median ({_fmt(ours['median'])}) differs from the published "
                           f"analytics.km_median ({_fmt(row['median_months'])}): the warehouse may be mid-refresh.")

    st.subheader("Cox proportional hazards, univariable")
    fit = cohort.n <= AUTO_COX_PATIENTS or st.toggle(
        f"Fit the Cox models ({cohort.n:,} patients: this takes a while)", key="survival_fit_cox")
    if fit:
        cox, events = cached_cox_table(cohort.filters, data.version())
        if cox.empty:
            st.info("No covariate to model.")
        else:
            st.caption(f"One model per covariate on its complete cases (Efron ties, Wald CI). {events:,} deaths. "
                       "Blank: the model did not converge (e.g. no death in a group), so there is no estimate.")
            charts.table(readable_cox(cox), "cox_univariable")


@st.cache_data(show_spinner="Fitting Cox models…", max_entries=32)
def cached_cox_table(cohort_filters: filters.Filters, version: data.Version | None) -> tuple[pd.DataFrame, int]:
    """``cox_table`` for a filter selection and the selection's deaths, once per warehouse version."""
    prepared = cox_input(cohort_filters)
    return cox_table(prepared), int(prepared[EVENT].fillna(0).sum())


COX_SOURCES = ("patient_key", TIME, EVENT, "sex", "age_at_first_cycle", "primary_site", "baseline_imaging",
               "krenning_score", "n_cycles", "cumulative_activity_gbq", "ecog_pre", "kps_pre", "best_overall_response")


def cox_input(cohort_filters: filters.Filters | None) -> pd.DataFrame:
    """The selection's patients (the columns the Cox covariates come from) with the derived groups."""
    patients = data.patients(cohort_filters, COX_SOURCES)
    return prepare(patients, data.toxicity_events(TOXICITY_THRESHOLD))

if __name__ == "__main__":
    main()
