"""The published endpoint analytics equal R's survival package, computed at test time by Rscript.

On a 5,000-patient `prrt synth` export refreshed once: analytics.km_median for PFS (and OS) equals
survfit(Surv(months, event) ~ 1, conf.type = X)'s median and 95% limits for X in log-log, log and
plain; analytics.logrank by sex equals survdiff; analytics.follow_up equals the reverse
Kaplan-Meier survfit(Surv(months, 1 - event) ~ 1). R reads the days of marts.fct_time_to_event
and divides by 30.4375 itself, so nothing of ours but the mart's rows goes into its numbers.

Rscript with the survival package comes from Debian (r-base-core, r-cran-survival; scripts/test.sh
installs them). Without it the test is skipped, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess

import duckdb
import pytest

from prrt.analytics import CONF_TYPES

R_SCRIPT = r"""
library(survival)
invisible(Sys.setlocale("LC_COLLATE", "C"))  # factor levels in byte order ('< 2' before '>= 2'), as Python sorts
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c(endpoint = "character", days = "numeric", event = "numeric",
                                      sex = "character", cycles = "character", response = "character",
                                      toxicity = "character", activity = "numeric"), na.strings = "")
d$months <- d$days / 30.4375
emit <- function(...) {
    parts <- list(...)
    values <- parts[[length(parts)]]
    cat(paste(c(unlist(parts[-length(parts)]), sprintf("%.17g", values)), collapse = "\t"), "\n", sep = "")
}
cat("survival\t", as.character(packageVersion("survival")), "\n", sep = "")
for (endpoint in unique(d$endpoint)) {
    e <- d[d$endpoint == endpoint, ]
    for (conf_type in c("log-log", "log", "plain")) {
        table <- summary(survfit(Surv(months, event) ~ 1, data = e, conf.type = conf_type))$table
        emit("km_median", endpoint, conf_type, table[c("records", "events", "median", "0.95LCL", "0.95UCL")])
        reverse <- summary(survfit(Surv(months, 1 - event) ~ 1, data = e, conf.type = conf_type))$table
        emit("follow_up", endpoint, conf_type, reverse[c("records", "events", "median", "0.95LCL", "0.95UCL")])
    }
    test <- survdiff(Surv(months, event) ~ sex, data = e)
    df <- length(test$n) - 1
    emit("logrank", endpoint, "sex", c(test$chisq, df, pchisq(test$chisq, df, lower.tail = FALSE)))
    # landmark analysis at 6 months (the issue's default): the patients followed to 6 months, time
    # from then, grouped as they stood before it; activity split at the landmark cohort's median
    lm <- e[e$months >= 6, ]
    lm$months <- lm$months - 6
    lm$activity_group <- ifelse(lm$activity <= median(lm$activity, na.rm = TRUE), "low", "high")
    for (group in c("cycles", "response", "toxicity", "activity_group")) {
        g <- lm[!is.na(lm[[group]]), ]
        if (length(unique(g[[group]])) < 2) next
        test <- survdiff(as.formula(paste("Surv(months, event) ~", group)), data = g)
        df <- length(test$n) - 1
        emit("landmark_logrank", endpoint, group, c(nrow(g), test$chisq, df, pchisq(test$chisq, df, lower.tail = FALSE)))
        fit <- coxph(as.formula(paste("Surv(months, event) ~", group)), data = g, ties = "efron")
        emit("landmark_cox", endpoint, group, c(nrow(g), unname(coef(fit)), sqrt(diag(vcov(fit)))))
    }
}
"""


def _rscript() -> str:
    found = shutil.which("Rscript")
    problem = None
    if found is None:
        problem = "Rscript not found (apt-get install r-base-core r-cran-survival; scripts/test.sh does it)"
    else:
        check = subprocess.run([found, "-e", "library(survival)"], capture_output=True, text=True, timeout=120)
        if check.returncode != 0:
            problem = f"R's survival package is missing (apt-get install r-cran-survival): {check.stderr.strip()}"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs R for the R reference tests: {problem}")
        pytest.skip(problem)
    return found


def _number(text: str) -> float:
    return math.nan if text in ("NA", "NaN") else float(text)


@pytest.fixture(scope="module")
def r_results(synth_5000_warehouse, tmp_path_factory) -> dict[tuple[str, str, str], list[float]]:
    """(kind, endpoint, conf_type or 'sex') -> R's numbers, from R run on the mart's rows."""
    rscript = _rscript()
    folder = tmp_path_factory.mktemp("r_endpoints")
    rows = folder / "time_to_event.csv"
    with duckdb.connect(str(synth_5000_warehouse), read_only=True) as con:
        con.execute(
            "COPY (SELECT t.endpoint, t.days, t.event, p.sex, p.cycles_group_at_landmark AS cycles,"
            " p.best_response_group_at_landmark AS response, p.toxicity_grade_group_at_landmark AS toxicity,"
            " p.cumulative_activity_gbq_at_landmark AS activity FROM marts.fct_time_to_event t"
            " JOIN marts.dim_patient p USING (patient_key) WHERE t.endpoint IN ('OS', 'PFS', 'TTP', 'DOR'))"
            f" TO '{rows}' (HEADER)"
        )
    script = folder / "endpoints.R"
    script.write_text(R_SCRIPT)
    run = subprocess.run([rscript, "--vanilla", str(script), str(rows)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    results = {}
    for line in run.stdout.splitlines():
        kind, *rest = line.split("\t")
        if kind == "survival":
            continue
        key, values = tuple(rest[:2]), rest[2:]
        results[(kind, *key)] = [_number(v) for v in values]
    assert results, run.stdout
    return results


@pytest.fixture(scope="module")
def published(synth_5000_warehouse):
    with duckdb.connect(str(synth_5000_warehouse), read_only=True) as con:
        yield {name: con.execute(f"SELECT * FROM analytics.{name}").df()
               for name in ("km_median", "logrank", "follow_up", "cox_univariable")}


def _assert_same(got: list[float], expected: list[float]) -> None:
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected, strict=True):
        if math.isnan(theirs):
            assert ours is None or math.isnan(ours), (got, expected)
        else:
            assert ours == pytest.approx(theirs, abs=1e-6), (got, expected)


@pytest.mark.parametrize("conf_type", CONF_TYPES)
@pytest.mark.parametrize("endpoint", ["PFS", "OS", "TTP", "DOR"])
def test_km_median_matches_survfit(published, r_results, endpoint, conf_type):
    medians = published["km_median"]
    row = medians[(medians["endpoint"] == endpoint) & (medians["stratum_variable"] == "all")
                  & (medians["ci_method"] == conf_type)]
    assert len(row) == 1
    expected = r_results[("km_median", endpoint, conf_type)]
    assert expected[1] > 100  # enough events for a real comparison
    _assert_same(row[["n", "events", "median_months", "ci_lower", "ci_upper"]].iloc[0].astype(float).tolist(),
                 expected)


@pytest.mark.parametrize("endpoint", ["PFS", "OS", "TTP", "DOR"])
def test_logrank_by_sex_matches_survdiff(published, r_results, endpoint):
    tests = published["logrank"]
    row = tests[(tests["endpoint"] == endpoint) & (tests["stratum_variable"] == "sex")]
    assert len(row) == 1
    statistic, df, p = r_results[("logrank", endpoint, "sex")]
    assert row["test_statistic"].iloc[0] == pytest.approx(statistic, rel=1e-8)
    assert row["degrees_of_freedom"].iloc[0] == df == 1
    assert row["p_value"].iloc[0] == pytest.approx(p, rel=1e-6)


@pytest.mark.parametrize("conf_type", CONF_TYPES)
@pytest.mark.parametrize("endpoint", ["OS", "PFS"])
def test_median_follow_up_matches_reverse_kaplan_meier(published, r_results, endpoint, conf_type):
    follow_up = published["follow_up"]
    row = follow_up[(follow_up["endpoint"] == endpoint) & (follow_up["ci_method"] == conf_type)]
    assert len(row) == 1
    records, censored, median, lower, upper = r_results[("follow_up", endpoint, conf_type)]
    assert row["censored"].iloc[0] == censored and row["n"].iloc[0] == records
    assert row["events"].iloc[0] == records - censored
    _assert_same(row[["median_months", "ci_lower", "ci_upper"]].iloc[0].astype(float).tolist(), [median, lower, upper])


# R's group -> our stratum_variable (the landmark strata; their groups are dim_patient's *_at_landmark)
LANDMARK_STRATA = {"cycles": "cycles_group", "response": "best_response_group", "toxicity": "toxicity_grade_group",
                   "activity_group": "cumulative_activity_group"}


@pytest.mark.parametrize("endpoint", ["OS", "PFS"])
@pytest.mark.parametrize("group", list(LANDMARK_STRATA))
def test_landmark_logrank_and_cox_match_r(published, r_results, endpoint, group):
    """The strata known after day 0 are compared at the 6-month landmark, as R computes it on the
    mart's days and dim_patient's groups as they stood before the landmark."""
    variable = LANDMARK_STRATA[group]
    if ("landmark_logrank", endpoint, group) not in r_results:
        pytest.fail(f"R found one group only for {group} ({endpoint}): the synth export should give two")
    n, statistic, df, p = r_results[("landmark_logrank", endpoint, group)]
    tests = published["logrank"]
    row = tests[(tests["endpoint"] == endpoint) & (tests["stratum_variable"] == variable)]
    assert len(row) == 1
    assert (row["method"].iloc[0], row["landmark_months"].iloc[0]) == ("landmark", 6.0)
    assert row["test_statistic"].iloc[0] == pytest.approx(statistic, rel=1e-8)
    assert row["degrees_of_freedom"].iloc[0] == df
    assert row["p_value"].iloc[0] == pytest.approx(p, rel=1e-6)
    medians = published["km_median"]
    landmark_n = medians[(medians["endpoint"] == endpoint) & (medians["stratum_variable"] == variable)
                         & (medians["ci_method"] == "log-log")]["n"].sum()
    assert landmark_n == n
    n_cox, *coefficients = r_results[("landmark_cox", endpoint, group)]
    cox = published["cox_univariable"]
    terms = cox[(cox["endpoint"] == endpoint) & (cox["covariate"] == variable)]
    assert set(terms["method"]) == {"landmark"} and (terms["n"] == n_cox).all()
    k = len(terms)
    # one coefficient per non-reference level; R and we both take the first level in sorted order as
    # reference, except the activity split, labelled '<= m' / '> m' here and 'low' / 'high' in R
    coef, se = coefficients[:k], coefficients[k:]
    if group == "activity_group":
        coef = [-c for c in coef]
    assert terms["coef"].tolist() == pytest.approx(coef, abs=1e-6)
    assert terms["se"].tolist() == pytest.approx(se, rel=1e-6)
