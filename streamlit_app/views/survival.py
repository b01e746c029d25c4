"""Survival: Kaplan-Meier curves of one endpoint (OS, PFS, TTP, DoR) for the filtered cohort, by
stratum, with the log-rank test, the univariable Cox models and their forest plot.

The strata and how each is compared (from day 0, or at the landmark for those known only after
day 0) are ``prrt.analytics.strata``'s; the groups are marts.dim_patient's columns (dbt)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from prrt.analytics import MEDIAN_CI_METHODS, add_derived_groups, kaplan_meier, logrank
from prrt.analytics.catalog import (
    ENDPOINT_EVENTS,
    ENDPOINT_NAMES,
    ENDPOINT_START,
    ENDPOINTS,
    LANDMARK_ENDPOINTS,
)
from prrt.analytics.strata import (
    COX_NUMERIC,
    SPLIT_IN_PYTHON,
    STRATA,
    STRATUM,
    Stratum,
    dim_patient_columns,
    landmark_months,
    method_label,
)
from prrt.analytics.survival import KaplanMeier, LogRankResult
from prrt.analytics.tables import cox_univariable_analyses, landmark_frame
from streamlit_app import charts, data, filters

TIME, EVENT = "months", "event"  # marts.fct_time_to_event's columns
AT_RISK_TIMES = (0, 6, 12, 18, 24, 30, 36)
AUTO_COX_PATIENTS = 5_000  # above this, the Cox models (seconds to fit) are fitted on request

# label -> stratum (None: the whole cohort)
STRATA_CHOICES: dict[str, Stratum | None] = {"None": None, **{s.label: s for s in STRATA}}
COVARIATE_LABELS: dict[str, str] = {**{s.variable: s.label for s in STRATA}, **COX_NUMERIC}


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


def survival_counts(cohort_filters: filters.Filters | None, stratum: Stratum | None, endpoint: str = "OS",
                    months: float | None = None) -> pd.DataFrame:
    """Patients by (stratum, months, event) of ``endpoint`` with their count ``n``: what ``load``
    needs, grouped in the warehouse. The stratum's groups are in column ``stratum.variable``. A
    stratum known after day 0 is read as it stood before the landmark ``months`` (default: the dbt
    var) and only the landmark cohort is returned, its time counted from the landmark
    (``tables.landmark_frame``, which also splits the activity at the landmark cohort's median)."""
    if stratum is None:
        return data.survival_counts(cohort_filters, endpoint=endpoint)
    column = stratum.source()
    counts = data.survival_counts(cohort_filters, SPLIT_IN_PYTHON.get(column, column), endpoint=endpoint)
    if stratum.landmark_column is not None:
        at = landmark_months() if months is None else months
        counts = landmark_frame(counts, TIME, EVENT, at, [column], weights="n")
    elif column in SPLIT_IN_PYTHON:
        raise ValueError(f"{stratum.variable}: a median split is analysed at the landmark only")
    return counts.rename(columns={column: stratum.variable})[[stratum.variable, TIME, EVENT, "n"]]


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


# the dim_patient columns the Cox models read (the strata's, as the analytics tables read them)
COX_SOURCES: tuple[str, ...] = dim_patient_columns()


def cox_input(cohort_filters: filters.Filters | None, endpoint: str) -> pd.DataFrame:
    """The selection's patients with ``endpoint`` (months, event) and the Cox covariates' columns."""
    return add_derived_groups(data.time_to_event_patients(cohort_filters, endpoint, COX_SOURCES), copy=False)


def cox_table(prepared: pd.DataFrame, endpoint: str = "OS") -> pd.DataFrame:
    """Univariable Cox models, one per covariate (each on its complete cases; the strata known after
    day 0 at the landmark, for the endpoints timed from the first cycle): ``tables.cox_univariable_analyses``,
    as analytics.cox_univariable."""
    at = landmark_months() if endpoint in LANDMARK_ENDPOINTS else None
    return cox_univariable_analyses(prepared, TIME, EVENT, at)


def readable_cox(table: pd.DataFrame, events: str = "Events") -> pd.DataFrame:
    """Labelled columns; estimates of models that did not converge are blanked (not estimable)."""
    table = table.copy()
    table.loc[~table["converged"].astype(bool), ["hr", "hr_lower", "hr_upper", "p_value"]] = np.nan
    out = pd.DataFrame({
        "Covariate": table["covariate"].map(COVARIATE_LABELS),
        "Term": table["term"], "Reference": table["reference"],
        "Compared": [_method(row) for row in table.itertuples()],
        "HR": table["hr"], "95% CI lower": table["hr_lower"], "95% CI upper": table["hr_upper"],
        "p (Wald)": table["p_value"], "p (LR)": table["lr_p_value"], "Patients": table["n"], events: table["events"],
        "Converged": table["converged"],
    })
    return out.round({"HR": 3, "95% CI lower": 3, "95% CI upper": 3, "p (Wald)": 4, "p (LR)": 4})


def _method(row) -> str:
    stratum = STRATUM.get(row.covariate)
    return "from day 0" if stratum is None else method_label(stratum, row.landmark_months)


def forest_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The forest plot's lines from ``cox_table``: one per term of a converged model with a finite CI,
    labelled 'Covariate: level vs reference' (per unit for a numeric covariate), the landmark strata
    marked: label, hr, hr_lower, hr_upper."""
    rows = table[table["converged"].astype(bool)]
    rows = rows[np.isfinite(rows[["hr", "hr_lower", "hr_upper"]].to_numpy(float)).all(axis=1)]
    labels = []
    for row in rows.itertuples():
        name = COVARIATE_LABELS.get(row.covariate, row.covariate)
        level = row.term.split("=", 1)[1] if "=" in row.term else None
        text = name if level is None else f"{name}: {level} vs {row.reference}"
        labels.append(text + (f" (landmark {row.landmark_months:g} mo)" if row.method == "landmark" else ""))
    return pd.DataFrame({"label": labels, "hr": rows["hr"].to_numpy(float), "hr_lower": rows["hr_lower"].to_numpy(float),
                         "hr_upper": rows["hr_upper"].to_numpy(float)})


def _fmt(value: float | None) -> str:
    return "NR" if value is None or pd.isna(value) else f"{value:.1f}"


def main() -> None:
    st.title("Survival")
    cohort = filters.cohort()

    c = st.columns([1, 2, 1])
    endpoint = c[0].selectbox("Endpoint", ENDPOINTS, format_func=lambda e: f"{e}: {ENDPOINT_NAMES[e]}",
                              key="survival_endpoint",
                              help="As marts.fct_time_to_event defines them (dbt/README.md): PFS and TTP to the "
                                   "first RECIST PD on CT/MRI (PFS: or death); DoR from the first CR/PR, "
                                   "responders only.")
    choice = c[1].selectbox("Stratify by", list(STRATA_CHOICES), key="survival_strata")
    conf_type = c[2].selectbox("Confidence interval method", MEDIAN_CI_METHODS, key="survival_ci_method",
                               help="As R survfit's conf.type; applies to the band and the median's CI. "
                                    "'spss': the median ± 1.96 SE as SPSS's Kaplan-Meier reports it (the SE "
                                    "from Greenwood's SE of S at the median over a density estimate), to "
                                    "compare with papers that used SPSS; its band is 'plain'.")
    stratum = STRATA_CHOICES[choice]
    name, events = ENDPOINT_NAMES[endpoint], ENDPOINT_EVENTS[endpoint]
    months = landmark_months()
    at_landmark = stratum is not None and stratum.landmark_column is not None
    if at_landmark and endpoint not in LANDMARK_ENDPOINTS:
        st.info(f"{choice} is known only after treatment starts, and {name.lower()} starts at the "
                f"{ENDPOINT_START[endpoint]}, not at the first cycle: there is no landmark to compare it at "
                "without guarantee-time bias, so it is not offered for this endpoint.")
        st.stop()
    counts = survival_counts(cohort.filters, stratum, endpoint, months)
    if at_landmark:
        everyone = int(data.survival_counts(cohort.filters, endpoint=endpoint).dropna(subset=[TIME, EVENT])["n"].sum())
        before = everyone - int(counts["n"].sum())
    page = load(counts, stratum and stratum.variable, conf_type)
    if not page.fits:
        st.info(f"No patient with {name.lower()} time and status (or stratum) in this selection.")
        st.stop()

    if at_landmark:
        st.info(f"**Landmark analysis at {months:g} months.** {choice} is known only after treatment starts, so "
                f"comparing it from day 0 would credit its better group with the time it took to get there "
                f"(guarantee-time bias). Only patients still followed at {months:g} months are compared, by "
                f"their group as it stood then, and time counts from the landmark: {before:,} patient{'' if before == 1 else 's'} "
                f"with an event or censoring before {months:g} months {'is' if before == 1 else 'are'} left out.")
    overall = page.medians.iloc[0] if stratum is None else None
    if overall is not None:
        m = st.columns(3)
        m[0].metric(f"Median {endpoint}, months (95% CI, {conf_type})",
                    f"{_fmt(overall['median'])} ({_fmt(overall['ci_lower'])}–{_fmt(overall['ci_upper'])})")
        m[1].metric("Patients", f"{overall['n']:,}")
        m[2].metric(events, f"{overall['events']:,}")
    if page.logrank is not None:
        p = page.logrank.p_value
        how = method_label(stratum, months)
        st.metric(f"Log-rank p ({choice.lower()}, {how})", "–" if pd.isna(p) else f"{p:.4f}",
                  help=f"χ² = {page.logrank.test_statistic:.3f}, {page.logrank.degrees_of_freedom} df")
    elif stratum is not None:
        st.info("Only one group has data: no log-rank test.")
    if page.n_excluded:
        missing = "a time and status" + (f" or {choice.lower()}" if stratum else "")
        st.caption(f"{page.n_excluded:,} patients without {missing} are left out.")

    times = at_risk_times(float(page.curves["time"].max()))
    start = f"the landmark ({months:g} months)" if at_landmark else ENDPOINT_START[endpoint]
    chart = charts.km_plot(page.curves, page.medians[["stratum", "median"]], page.at_risk, ticks=times,
                           y_title=name, x_title=f"Months since {start}")
    st.caption(f"Steps: Kaplan-Meier estimate; shaded: pointwise 95% CI ({_band(conf_type)}); +: censored; "
               "dashed: median. Below: the number at risk.")
    slug = f"{endpoint.lower()}_{stratum.variable if stratum else 'all'}"
    charts.show(chart, f"km_{slug}", stretch=False)

    left, right = st.columns(2)
    with left:
        st.markdown(f"**Median {name.lower()}**")
        charts.table(page.medians.rename(columns={
            "stratum": "Stratum", "n": "Patients", "events": events, "median": "Median (months)",
            "ci_lower": "95% CI lower", "ci_upper": "95% CI upper", "ci_method": "CI method"}).round(2),
            f"km_median_{slug}")
    with right:
        st.markdown("**Number at risk**")
        wide = page.at_risk.pivot(index="stratum", columns="time", values="at_risk")
        wide.columns = [f"{t:g} mo" for t in wide.columns]
        charts.table(wide.reset_index().rename(columns={"stratum": "Stratum"}), f"at_risk_{slug}")

    if not cohort.filters.active and stratum is None:
        _compare_with_published(endpoint, page.medians.iloc[0], conf_type)

    st.subheader("Cox proportional hazards, univariable")
    fit = cohort.n <= AUTO_COX_PATIENTS or st.toggle(
        f"Fit the Cox models ({cohort.n:,} patients: this takes a while)", key="survival_fit_cox")
    if fit:
        cox, n_events = cached_cox_table(cohort.filters, endpoint, data.version())
        if cox.empty:
            st.info("No covariate to model.")
            return
        st.caption(f"One model per covariate on its complete cases (Efron ties, Wald CI); {events.lower()}: "
                   f"{n_events:,}. Strata known only after day 0 are fitted at the {months:g}-month landmark. "
                   "Blank: the model did not converge (e.g. no event in a group), so there is no estimate.")
        forest = forest_rows(cox)
        if len(forest):
            st.markdown(f"**Forest plot: hazard ratios for {name.lower()}**")
            charts.show(charts.forest_plot(forest), f"forest_{endpoint.lower()}", stretch=False)
        charts.table(readable_cox(cox, events), f"cox_univariable_{endpoint.lower()}")


def _compare_with_published(endpoint: str, ours: pd.Series, conf_type: str) -> None:
    """Whether the whole cohort's median equals the published analytics.km_median of the endpoint."""
    published = data.km_median(endpoint)
    published = published[(published["stratum_variable"] == "all") & (published["ci_method"] == conf_type)]
    if not len(published):
        return
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


@st.cache_data(show_spinner="Fitting Cox models…", max_entries=32)
def cached_cox_table(cohort_filters: filters.Filters, endpoint: str,
                     version: data.Version | None) -> tuple[pd.DataFrame, int]:
    """``cox_table`` for a filter selection and endpoint, with the selection's events, once per
    warehouse version."""
    prepared = cox_input(cohort_filters, endpoint)
    return cox_table(prepared, endpoint), int(prepared[EVENT].fillna(0).sum())


if __name__ == "__main__":
    main()
