"""Our analytics reproduce R's survival package (R 4.2.2, survival 3.5-3) on the lung data.

r_survival_lung.json is a copy of /work/shared/reference/r_survival_lung.json (see the
README there): survfit medians for conf.type log-log / log / plain, summary(fit, times),
survdiff, coxph (Efron ties). Times are in days.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from lifelines.datasets import load_lung

from prrt.analytics import (
    CONF_TYPES,
    build_survival_tables,
    cox_multivariable,
    cox_univariable,
    fit_cox,
    kaplan_meier,
    logrank,
)

REFERENCE = json.loads((Path(__file__).with_name("r_survival_lung.json")).read_text())


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    data = load_lung()
    # lifelines' copy already recodes R's status (1 censored, 2 dead) to 0/1
    assert set(data["status"].unique()) == {0, 1}
    assert (len(data), int(data["status"].sum())) == (228, 165)
    return data


def _curve(data: pd.DataFrame, stratum: str):
    if stratum == "overall":
        return kaplan_meier(data["time"], data["status"])
    sex = int(stratum.removeprefix("sex_"))
    rows = data[data["sex"] == sex]
    return kaplan_meier(rows["time"], rows["status"])


@pytest.mark.parametrize("conf_type", CONF_TYPES)
@pytest.mark.parametrize("stratum", ["overall", "sex_1", "sex_2"])
def test_median_and_ci_match_r(lung, conf_type, stratum):
    expected = REFERENCE[f"median_days_conf_type_{conf_type}"][stratum]
    median = _curve(lung, stratum).median(conf_type)
    # medians and limits are event times: exact equality
    assert [median.median, median.ci_lower, median.ci_upper] == expected


def test_log_log_band_is_lifelines_band(lung):
    km = kaplan_meier(lung["time"], lung["status"])
    ours = km.band("log-log")
    theirs = km.fitter.confidence_interval_.loc[km.table["time"]]
    defined = ours["lower"].notna().to_numpy()
    assert defined.sum() > 150
    assert ours["lower"].to_numpy()[defined] == pytest.approx(theirs.iloc[:, 0].to_numpy()[defined], rel=1e-12)
    assert ours["upper"].to_numpy()[defined] == pytest.approx(theirs.iloc[:, 1].to_numpy()[defined], rel=1e-12)


def test_survival_at_times_match_r_summary(lung):
    expected = REFERENCE["survival_at_days_180_365_730_loglog"]
    got = kaplan_meier(lung["time"], lung["status"]).survival_at([180, 365, 730], "log-log")
    # the reference carries 10 significant digits
    assert got["survival"].tolist() == pytest.approx(expected["surv"], rel=1e-8)
    assert got["ci_lower"].tolist() == pytest.approx(expected["lower"], rel=1e-8)
    assert got["ci_upper"].tolist() == pytest.approx(expected["upper"], rel=1e-8)
    assert got["at_risk"].tolist() == expected["n_risk"]


def test_logrank_by_sex_matches_survdiff(lung):
    expected = REFERENCE["logrank_sex"]
    result = logrank(lung["time"], lung["status"], lung["sex"])
    assert result.test_statistic == pytest.approx(expected["chisq"], rel=1e-8)
    assert result.degrees_of_freedom == expected["df"]
    assert result.p_value == pytest.approx(expected["p"], rel=1e-8)


def test_univariable_cox_on_sex_matches_coxph(lung):
    expected = REFERENCE["cox_sex"]
    table = cox_univariable(lung, "time", "status", ["sex"])
    row = table.iloc[0]
    assert (row["term"], row["n_used"], row["events"], row["converged"]) == ("sex", 228, 165, True)
    assert row["coef"] == pytest.approx(expected["coef"], abs=1e-7)
    assert row["hr"] == pytest.approx(expected["hr"], abs=1e-7)
    assert row["hr_lower"] == pytest.approx(expected["hr_lower95"], abs=1e-7)
    assert row["hr_upper"] == pytest.approx(expected["hr_upper95"], abs=1e-7)
    assert row["p_value"] == pytest.approx(expected["p_wald"], rel=1e-6)


def test_multivariable_cox_matches_coxph_and_reports_complete_cases(lung):
    expected = REFERENCE["cox_age_sex_ecog_hr"]
    result = cox_multivariable(lung, "time", "status", ["age", "sex", "ph.ecog"])
    assert result.converged
    assert result.n_used == expected["n_used"] == 227
    assert result.n_dropped == 1  # the row with missing ph.ecog
    assert result.events == 164
    hr = result.terms.set_index("term")["hr"]
    for term in ("age", "sex", "ph.ecog"):
        assert hr[term] == pytest.approx(expected[term], abs=1e-7), term
    # proportional-hazards check (R's cox.zph: test_statistics_labelling.py has R's numbers)
    ph = result.ph_test.set_index("term")
    assert list(ph.index) == ["age", "sex", "ph.ecog", "GLOBAL"]
    assert ph["p_value"].between(0, 1).all()
    assert (ph["time_transform"] == "km").all()


def test_categorical_covariate_is_dummy_coded_against_reference(lung):
    data = lung.assign(sex_label=lung["sex"].map({1: "male", 2: "female"}))
    result = fit_cox(data, "time", "status", ["sex_label"], reference_levels={"sex_label": "male"})
    row = result.terms.iloc[0]
    assert row["term"] == "sex_label=female"
    assert row["coef"] == pytest.approx(REFERENCE["cox_sex"]["coef"], abs=1e-7)


def test_contract_tables_carry_the_r_numbers(lung):
    data = lung.rename(columns={"time": "os_months", "status": "os_event"})
    data["sex"] = data["sex"].map({1: "sex_1", 2: "sex_2"})
    tables = build_survival_tables(data, ["sex"])

    medians = tables["km_median"]
    assert list(medians.columns) == ["stratum_variable", "stratum", "n", "events", "median_months",
                                     "ci_lower", "ci_upper", "ci_method"]
    for conf_type in CONF_TYPES:
        for stratum_variable, stratum, key in (("all", "all", "overall"), ("sex", "sex_1", "sex_1"), ("sex", "sex_2", "sex_2")):
            row = medians[(medians.stratum_variable == stratum_variable) & (medians.stratum == stratum)
                          & (medians.ci_method == conf_type)]
            assert len(row) == 1
            got = row[["median_months", "ci_lower", "ci_upper"]].iloc[0].tolist()
            assert got == REFERENCE[f"median_days_conf_type_{conf_type}"][key]
    overall = medians[(medians.stratum_variable == "all")].iloc[0]
    assert (overall["n"], overall["events"]) == (228, 165)

    logrank_rows = tables["logrank"]
    assert logrank_rows["stratum_variable"].tolist() == ["sex"]
    assert logrank_rows["test_statistic"].iloc[0] == pytest.approx(REFERENCE["logrank_sex"]["chisq"], rel=1e-8)
    assert logrank_rows["degrees_of_freedom"].iloc[0] == 1

    curve = tables["km_curve"]
    all_curve = curve[curve.stratum_variable == "all"]
    assert all_curve.iloc[0][["time_months", "survival", "ci_lower", "ci_upper", "at_risk", "events", "censored"]].tolist() == [
        0.0, 1.0, 1.0, 1.0, 228, 0, 0]
    assert all_curve["events"].sum() == 165 and all_curve["censored"].sum() == 63
    # distinct observed times, as R's survfit (plus time 0)
    assert len(all_curve) == lung["time"].nunique() + 1
