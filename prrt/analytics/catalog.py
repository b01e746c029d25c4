"""What each table of schema ``analytics`` means, column by column, and what it reads.

``TABLES`` is the single description of the published analytics tables: the Dagster
asset uses it for each asset's description and column schema, and a test checks that
every table built by ``build_analytics_tables`` has exactly the documented columns.
``ANALYTICS_QUERIES`` is all the analytics read from the warehouse (from the marts of
``MARTS_READ``): one query per input of ``build_analytics_tables``, each returning only
what its computations need.

Conventions throughout: time in months is days / 30.4375 (``marts.fct_time_to_event``);
``endpoint`` is the time-to-event endpoint of ``marts.fct_time_to_event`` ('OS', 'PFS', 'TTP',
'DOR': ``ENDPOINTS``); ``stratum_variable = 'all'`` (stratum 'all') is the whole cohort; the 95% intervals are
two-sided; a statistic that cannot be estimated is NaN (NULL in SQL), never a crash or
an infinite value.
"""

from __future__ import annotations

from dataclasses import dataclass

from .strata import dim_patient_columns, readable_strata

# km_median.ci_method: R survfit's three conf.types, then SPSS's median +/- 1.96 SE (here, not in
# ``survival``, so that the Dagster checks read it without loading the statistics)
MEDIAN_CI_METHODS: tuple[str, ...] = ("log-log", "log", "plain", "spss")


@dataclass(frozen=True)
class TableDoc:
    description: str
    columns: dict[str, str]

    def markdown(self) -> str:
        lines = [self.description, "", "| column | meaning |", "|---|---|"]
        lines += [f"| {name} | {meaning} |" for name, meaning in self.columns.items()]
        return "\n".join(lines)


# the endpoints of marts.fct_time_to_event the survival tables analyse (TTR, an event for every
# responder, is not a survival analysis): OS and PFS always, TTP and DOR when they have events
ENDPOINTS: tuple[str, ...] = ("OS", "PFS", "TTP", "DOR")
ALWAYS_ANALYSED: tuple[str, ...] = ("OS", "PFS")
# how the app names each endpoint, its events, and where its time starts
ENDPOINT_NAMES: dict[str, str] = {"OS": "Overall survival", "PFS": "Progression-free survival",
                                  "TTP": "Time to progression", "DOR": "Duration of response"}
ENDPOINT_EVENTS: dict[str, str] = {"OS": "Deaths", "PFS": "Progressions or deaths", "TTP": "Progressions",
                                   "DOR": "Progressions or deaths"}
ENDPOINT_START: dict[str, str] = {"OS": "first cycle", "PFS": "first cycle", "TTP": "first cycle",
                                  "DOR": "first response"}
# the endpoints timed from the first administration: the only ones a landmark (months after the first
# administration, as the *_at_landmark groups are) can apply to; DOR starts at the first response
LANDMARK_ENDPOINTS: tuple[str, ...] = tuple(e for e, start in ENDPOINT_START.items() if start == "first cycle")
# the endpoints whose median follow-up (reverse Kaplan-Meier) analytics.follow_up reports
FOLLOW_UP_ENDPOINTS: tuple[str, ...] = ("OS", "PFS")


def endpoint_columns(endpoint: str) -> tuple[str, str]:
    """The (months, event) columns of ``endpoint`` in the patient frame: os_months, os_event, ..."""
    return f"{endpoint.lower()}_months", f"{endpoint.lower()}_event"


_ENDPOINT = {
    "endpoint": "'OS' (overall survival), 'PFS' (progression-free survival), 'TTP' (time to progression) or "
                "'DOR' (duration of response, responders only) as marts.fct_time_to_event defines them; OS and "
                "PFS always, TTP and DOR when they have at least one event",
}

_EVENTS = "events of the endpoint (deaths for OS; PD or death for PFS and DOR; PD for TTP)"

_STRATUM = {
    "stratum_variable": "'all' for the whole cohort, else the stratifying variable (" + readable_strata() + "; "
                        "strata.STRATA)",
    "stratum": "the level of stratum_variable ('all' for the whole cohort)",
}

# how a stratum is compared: the strata known only after day 0 at the landmark (guarantee-time bias)
_METHOD = {
    "method": "'from day 0' (the whole cohort and the baseline factors: time from the endpoint's start) or "
              "'landmark' (a stratum known only after day 0: response, toxicity, cycles, activity; OS, PFS and "
              "TTP only, not DOR, which starts at the response): only the patients with the endpoint's event or "
              "censoring at or after the landmark, grouped by what was known before it (dim_patient's "
              "*_at_landmark columns; Anderson, Cain & Gelber 1983). Their times (time_months, median_months, "
              "the 12/24/36 months of km_survival_at) count from the landmark, not from the first administration",
    "landmark_months": "the landmark, months after the first administration (the dbt var landmark_months); NULL "
                       "from day 0",
}

_COX_ESTIMATES = {
    "coef": "log hazard ratio (NaN when the fit did not converge)",
    "se": "standard error of coef",
    "hr": "hazard ratio exp(coef); per unit for a numeric covariate (year of age, ECOG point), "
          "versus the reference level for a categorical one",
    "hr_lower": "lower limit of the 95% Wald confidence interval of hr",
    "hr_upper": "upper limit of the 95% Wald confidence interval of hr",
    "p_value": "Wald test p-value of the term",
}

_COX_MODEL_TESTS = {
    "lr_statistic": "likelihood-ratio chi-square of the model against no covariates, 2 (l(beta) - l(0)), as R "
                    "summary(coxph)'s 'Likelihood ratio test' (NaN when the fit did not converge)",
    "lr_df": "degrees of freedom of the model tests: the number of model terms",
    "lr_p_value": "likelihood-ratio test p-value of the model",
    "score_statistic": "score (log-rank) chi-square of the model at beta = 0, as R summary(coxph)'s 'Score "
                       "(logrank) test'",
    "score_p_value": "score test p-value of the model",
}

TABLES: dict[str, TableDoc] = {
    "km_curve": TableDoc(
        "Kaplan-Meier step curves per endpoint, overall and per stratum, one row per distinct "
        "observed time (time 0 included), with R survfit's log-log pointwise 95% band.",
        {
            **_ENDPOINT,
            **_STRATUM,
            **_METHOD,
            "time_months": "time since the endpoint's start (the first administration; the first response for "
                           "DOR), months",
            "survival": "Kaplan-Meier estimate S(t)",
            "ci_lower": "lower limit of the log-log pointwise 95% band (NaN where undefined, as R)",
            "ci_upper": "upper limit of the log-log pointwise 95% band",
            "at_risk": "patients under observation just before time_months",
            "events": "events at time_months (" + _EVENTS + ")",
            "censored": "patients censored at time_months",
        },
    ),
    "km_median": TableDoc(
        "Median time to event per endpoint with its 95% confidence interval, overall and per stratum, one row "
        "per R survfit conf.type ('log-log', 'log', 'plain') and one as SPSS's Kaplan-Meier reports it "
        "('spss': median +/- 1.96 SE); NaN where the curve or band never reaches 0.5.",
        {
            **_ENDPOINT,
            **_STRATUM,
            **_METHOD,
            "n": "patients in the stratum with the endpoint (responders only for DOR)",
            "events": _EVENTS + " in the stratum",
            "median_months": "median time to event (median OS, PFS, ...), months (R print.survfit rule; for "
                             "'spss' SPSS's: the first event time with S(t) <= 0.5, no midpoint on a flat 0.5)",
            "ci_lower": "lower 95% limit of the median (for 'spss' it may be negative, as SPSS prints it)",
            "ci_upper": "upper 95% limit of the median",
            "ci_method": "'log-log', 'log' or 'plain': the R survfit conf.type of the band where the limits "
                         "cross 0.5; 'spss': median +/- 1.96 SE as SPSS's KM procedure, SE = Greenwood SE of "
                         "S at the median / (S(u) - S(l)) / (l - u), u and l the last death time with S >= 0.55 "
                         "and the first with S <= 0.45 (Collett 1994, section 2.4; "
                         "survival.KaplanMeier.spss_median)",
        },
    ),
    "logrank": TableDoc(
        "Log-rank test (R survdiff, rho = 0) of equal time to event per endpoint across the levels of each "
        "stratifying variable that has at least two levels with data.",
        {
            **_ENDPOINT,
            "stratum_variable": "the stratifying variable",
            **_METHOD,
            "test_statistic": "log-rank chi-square statistic",
            "degrees_of_freedom": "number of levels with data minus one",
            "p_value": "p-value (NaN with no events)",
        },
    ),
    "km_survival_at": TableDoc(
        "Event-free probability per endpoint at 12, 24 and 36 months (overall survival, PFS, ...) with the "
        "log-log 95% CI and the counts, overall and per stratum, as R's summary(survfit, times = ...); NaN "
        "survival beyond the stratum's follow-up.",
        {
            **_ENDPOINT,
            **_STRATUM,
            **_METHOD,
            "time_months": "landmark time, months (12, 24, 36)",
            "n": "patients in the stratum",
            "survival": "S(t): the Kaplan-Meier estimate at the last observed time <= t; NaN after the last "
                        "observed time",
            "ci_lower": "lower limit of the log-log 95% CI of S(t)",
            "ci_upper": "upper limit of the log-log 95% CI of S(t)",
            "ci_method": "'log-log'",
            "at_risk": "patients still under observation at t (follow-up >= t)",
            "events": "cumulative events up to and including t",
            "censored": "cumulative censorings up to and including t",
        },
    ),
    "cox_univariable": TableDoc(
        "Univariable Cox proportional-hazards models per endpoint (Efron ties), one model per "
        "endpoint and covariate: each stratifying variable (as categories; those known only after day 0 "
        "at the landmark, as the survival tables) plus age, baseline ECOG and KPS (per unit); a covariate without any recorded value has no rows. "
        "Models that do not converge (e.g. no events in a level: monotone likelihood) keep their rows "
        "with converged = false and NaN estimates.",
        {
            **_ENDPOINT,
            "covariate": "the covariate of this model",
            **_METHOD,
            "term": "model term: the covariate for a numeric one, '<covariate>=<level>' for a categorical one",
            "reference": "reference level of a categorical covariate (NULL for a numeric one)",
            "n": "patients used (complete cases)",
            "events": "events among them",
            **_COX_ESTIMATES,
            **{k: v + (" — in a univariable model also the global test of its covariate: for a categorical one "
                       "on levels - 1 df, all its terms at once" if k == "lr_p_value" else "")
               for k, v in _COX_MODEL_TESTS.items()},
            "converged": "true when the fit converged to a finite maximum, where every |d log L / d coef| < 1e-8 "
                         "(cox.SCORE_TOLERANCE)",
            "note": "why a fit did not converge or failed (fitter messages), else NULL",
        },
    ),
    "cox_multivariable": TableDoc(
        "A prespecified multivariable Cox model per endpoint (age at first cycle + sex + baseline "
        "ECOG) on complete cases, with the model's likelihood-ratio and score tests, each covariate's "
        "likelihood-ratio test (R drop1) and R's cox.zph test of proportional hazards (survival >= 3.0: "
        "transform 'km', terms = TRUE, with its GLOBAL test; not lifelines' proportional_hazard_test). "
        "With few events the model may not converge: then converged = false and the estimates are NaN.",
        {
            **_ENDPOINT,
            "model": "the model's covariates, 'a + b + c'",
            "term": "model term: the covariate for a numeric one, '<covariate>=<level>' for a categorical one",
            "reference": "reference level of a categorical covariate (NULL for a numeric one)",
            "n": "patients used (complete cases)",
            "events": "events among them",
            **_COX_ESTIMATES,
            **_COX_MODEL_TESTS,
            "covariate_lr_statistic": "likelihood-ratio chi-square of the model without the term's covariate "
                                      "against the full model, on the same patients (R drop1(fit, test = "
                                      "\"Chisq\")): for a categorical covariate one test of all its levels",
            "covariate_lr_df": "degrees of freedom of covariate_lr_statistic: the covariate's number of terms "
                               "(levels - 1 for a categorical one)",
            "covariate_lr_p_value": "p-value of the covariate's likelihood-ratio test",
            "ph_test_statistic": "R cox.zph chi-square of the term's covariate (transform 'km', terms = TRUE: "
                                 "one test for all the levels of a categorical covariate): the score test of "
                                 "covariate x g(t) terms, g = 1 - KM(t-) centred",
            "ph_df": "degrees of freedom of ph_test_statistic (the covariate's number of terms)",
            "ph_p_value": "R cox.zph p-value of the covariate (small: hazards not proportional)",
            "ph_global_statistic": "R cox.zph GLOBAL chi-square: all covariates at once",
            "ph_global_df": "degrees of freedom of the GLOBAL test: the number of model terms",
            "ph_global_p_value": "R cox.zph GLOBAL p-value",
            "converged": "true when the fit converged to a finite maximum, where every |d log L / d coef| < 1e-8 "
                         "(cox.SCORE_TOLERANCE)",
            "note": "why the fit did not converge or failed (fitter messages), else NULL",
        },
    ),
    "follow_up": TableDoc(
        "Median follow-up per endpoint (OS, PFS) by the reverse Kaplan-Meier method (Schemper & Smith 1996): "
        "the Kaplan-Meier estimate with censoring as the event and the endpoint's events censored, as R's "
        "survfit(Surv(months, 1 - event) ~ 1), with its 95% CI, one row per conf.type ('log-log', 'log', "
        "'plain'). NaN where the curve or band never reaches 0.5.",
        {
            **_ENDPOINT,
            "n": "patients with the endpoint",
            "events": _EVENTS,
            "censored": "patients censored (the reverse Kaplan-Meier's events)",
            "median_months": "median follow-up, months (R print.survfit rule on the reverse curve)",
            "ci_lower": "lower 95% limit of the median follow-up",
            "ci_upper": "upper 95% limit of the median follow-up",
            "ci_method": "R survfit conf.type of the band the limits come from: 'log-log', 'log' or 'plain'",
        },
    ),
    "response_rates": TableDoc(
        "Objective response rate (CR + PR) and disease control rate (CR + PR + SD) of the treated cohort "
        "with exact Clopper-Pearson 95% CIs, for the unconfirmed best overall response (as in the paper) "
        "and the RECIST 1.1-confirmed one. NE or missing responses count in the denominator.",
        {
            "definition": "'unconfirmed' or 'confirmed'",
            "source_column": "the dim_patient column the responses come from",
            "measure": "'ORR' or 'DCR'",
            "k": "responders (ORR) or patients with disease control (DCR)",
            "n": "treated patients (the denominator)",
            "proportion": "k / n",
            "ci_lower": "lower limit of the Clopper-Pearson 95% CI",
            "ci_upper": "upper limit of the Clopper-Pearson 95% CI",
            "confidence": "confidence level (0.95)",
            "ci_method": "'clopper-pearson'",
            "n_cr": "patients with best response CR",
            "n_pr": "patients with best response PR",
            "n_sd": "patients with best response SD",
            "n_pd": "patients with best response PD",
            "n_ne": "patients not evaluable or without a response",
            "n_evaluable": "n_cr + n_pr + n_sd + n_pd",
        },
    ),
    "performance_status_change": TableDoc(
        "ECOG and Karnofsky performance status before vs after treatment in the treated cohort: medians, "
        "counts improved / worsened / unchanged and the Wilcoxon signed-rank test (exact, conditional on "
        "zeros dropped and tied ranks when there are any).",
        {
            "measure": "'ecog' or 'kps'",
            "before_column": "the dim_patient column of the baseline value",
            "after_column": "the dim_patient column of the post-treatment value",
            "better": "which direction is an improvement: 'lower' (ECOG) or 'higher' (KPS)",
            "n_pairs": "patients with both values",
            "median_before": "median before treatment",
            "median_after": "median after treatment",
            "n_improved": "patients whose score improved",
            "n_worsened": "patients whose score worsened",
            "n_unchanged": "patients whose score did not change (dropped from the test)",
            "statistic": "signed-rank statistic min(W+, W-) over non-zero differences",
            "p_value": "two-sided p-value by the method in `method`",
            "method": "'exact' (no zeros or ties), 'exact-conditional' (zeros dropped, mid-ranks, exact "
                      "permutation distribution) or 'asymptotic' (large samples)",
            "p_value_asymptotic": "normal-approximation p-value (tie-corrected, no continuity correction), "
                                  "for comparison with SPSS",
            "zero_method": "handling of zero differences: 'wilcox' (dropped, as R and SPSS)",
        },
    ),
    "toxicity_summary": TableDoc(
        "Patients by worst post-baseline CTCAE v4.03 grade per term (the paper's Table 2), each patient "
        "counted once per term at their worst grade; percentages of the treated cohort.",
        {
            "ctcae_term": "CTCAE v4.03 term",
            "n_patients": "treated patients (the denominator of every percentage)",
            "n_assessed": "patients with a gradable post-baseline value of the term (0: never measured)",
            **{f"grade_{g}_{s}": f"patients whose worst grade is {g} ({'count' if s == 'n' else '% of n_patients'})"
               for g in (1, 2, 3, 4) for s in ("n", "pct")},
            "any_grade_n": "patients with grade >= 1",
            "any_grade_pct": "any_grade_n as % of n_patients",
            "grade_3plus_n": "patients with grade >= 3",
            "grade_3plus_pct": "grade_3plus_n as % of n_patients",
        },
    ),
    "lab_nadir": TableDoc(
        "Time to nadir per laboratory analyte: per patient the worst post-baseline value (lowest for "
        "haemoglobin, WBC, platelets, neutrophils, lymphocytes, albumin; highest for creatinine, AST, ALT, "
        "bilirubin) and the days from the first administration to it (marts.fct_lab_nadir), summarised "
        "as median and IQR.",
        {
            "analyte": "analyte (marts.fct_lab_nadir.analyte)",
            "unit": "canonical unit of the values",
            "direction": "'lowest' (nadir) or 'highest' (peak) post-baseline value",
            "n_patients": "patients with a post-baseline value",
            "days_to_nadir_median": "median days from the first administration to the nadir",
            "days_to_nadir_q1": "first quartile of days to nadir",
            "days_to_nadir_q3": "third quartile of days to nadir",
            "nadir_value_median": "median nadir value, in unit",
            "nadir_value_q1": "first quartile of the nadir value",
            "nadir_value_q3": "third quartile of the nadir value",
            "n_with_baseline": "patients with a positive baseline value (for the % change)",
            "baseline_value_median": "median baseline value of those patients",
            "pct_change_median": "median % change from baseline to nadir, 100 * (nadir - baseline) / baseline",
            "pct_change_q1": "first quartile of the % change",
            "pct_change_q3": "third quartile of the % change",
        },
    ),
}

# (output column prefix, fct_lab_nadir column) of the median-and-quartiles summaries
_QUARTILED = (("days_to_nadir", "days_to_nadir"), ("nadir_value", "nadir_value"),
              ("pct_change", "pct_change_from_baseline"))


def nadir_summary_sql(relation: str = "marts.fct_lab_nadir") -> str:
    """The per-analyte aggregate of ``relation`` (columns of marts.fct_lab_nadir) that
    ``labs.lab_nadir_table`` reads: ``labs.LAB_NADIR_COLUMNS`` with ``units`` and ``directions`` (the
    distinct non-null ones, a list, checked to be one) in place of unit and direction.
    Missing values are ignored, as pandas' ``quantile`` does; the baseline median is over
    the patients with a % change (a positive baseline)."""
    # one quantile_cont per column with the three probabilities: one sort each, not three
    quartiles = ", ".join(f"quantile_cont({column}, [0.5, 0.25, 0.75]) AS {prefix}" for prefix, column in _QUARTILED)
    unpacked = ", ".join(f"{prefix}[{i}] AS {prefix}_{name}"
                         for prefix, _ in _QUARTILED for i, name in enumerate(("median", "q1", "q3"), start=1))
    return f"""SELECT analyte, units, directions, n_patients, n_with_baseline, baseline_value_median, {unpacked}
FROM (
    SELECT
        analyte,
        list_sort(list(DISTINCT unit) FILTER (WHERE unit IS NOT NULL)) AS units,
        list_sort(list(DISTINCT direction) FILTER (WHERE direction IS NOT NULL)) AS directions,
        count(*) AS n_patients,
        count(pct_change_from_baseline) AS n_with_baseline,
        quantile_cont(baseline_value, 0.5) FILTER (WHERE pct_change_from_baseline IS NOT NULL)
            AS baseline_value_median,
        {quartiles}
    FROM {relation}
    WHERE analyte IS NOT NULL
    GROUP BY analyte
)"""


# the dim_patient columns the analytics read (and nothing else). The times come from
# marts.fct_time_to_event (ENDPOINT_COLUMNS), not from dim_patient.os_months (equal, a dbt test).
# The derived groups (cycles_group, best_response_group, toxicity_grade_group, ki67_group) and their
# landmark versions (*_at_landmark: from what was known before the landmark) are defined once, in dbt
# (dbt/macros/patient_groups.sql, seeds response_groups and ki67_groups); strata.STRATA names them.
PATIENT_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys((
    "sex", "age_at_first_cycle", "primary_site", "baseline_imaging", "krenning_score", "is_treated", "n_cycles",
    "cumulative_activity_gbq", "ecog_pre", "ecog_post", "kps_pre", "kps_post", "best_overall_response",
    "confirmed_best_overall_response", "worst_ctcae_grade", *dim_patient_columns(),
)))
# each endpoint's months and event, one pair of columns per endpoint: os_months, os_event, pfs_months, ...
ENDPOINT_COLUMNS: tuple[str, ...] = tuple(column for endpoint in ENDPOINTS for column in endpoint_columns(endpoint))


def patients_sql() -> str:
    """One row per patient of marts.dim_patient: ``PATIENT_COLUMNS`` and, from marts.fct_time_to_event
    (patient x endpoint), each endpoint's months and event side by side (NULL where the patient has no
    row for it: untreated patients, non-responders for DOR)."""
    pivoted = ",\n        ".join(
        f"max({measure}) FILTER (WHERE endpoint = '{endpoint}') AS {column}"
        for endpoint in ENDPOINTS
        for measure, column in zip(("months", "event"), endpoint_columns(endpoint), strict=True)
    )
    return f"""SELECT {', '.join(f'p.{c}' for c in PATIENT_COLUMNS)}, {', '.join(f't.{c}' for c in ENDPOINT_COLUMNS)}
FROM marts.dim_patient p
LEFT JOIN (
    SELECT
        patient_key,
        {pivoted}
    FROM marts.fct_time_to_event
    GROUP BY patient_key
) t ON t.patient_key = p.patient_key"""


# input of build_analytics_tables -> the query that feeds it (everything the analytics read)
ANALYTICS_QUERIES: dict[str, str] = {
    # one row per patient, with every endpoint's time and event (patients_sql)
    "dim_patient": patients_sql(),
    # Table 2 needs only how many patients reached each worst grade per term (fct_toxicity has one
    # row per patient x term, a tested grain), so the counting is done here, not on 10 rows a patient
    "toxicity_grade_counts": (
        "SELECT ctcae_term, worst_grade, count(*) AS n FROM marts.fct_toxicity GROUP BY ctcae_term, worst_grade"
    ),
    # the per-patient nadir (dbt model fct_lab_nadir) summarised per analyte in SQL: ten rows, not
    # the ten million of a million patients (nadir_summary_sql, read by labs.lab_nadir_table)
    "lab_nadir_summary": nadir_summary_sql("marts.fct_lab_nadir"),
}

# the marts those queries read (the analytics assets depend on them)
MARTS_READ: tuple[str, ...] = ("dim_patient", "fct_time_to_event", "fct_toxicity", "fct_lab_nadir")
