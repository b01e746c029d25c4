"""The analytics tables beyond the contract's three, on small hand-checkable inputs
(and, for the Cox tables, on R's lung data against coxph)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_lung
from scipy.stats import beta, norm

from prrt.analytics import (
    cox_multivariable_table,
    cox_univariable_table,
    km_survival_at_table,
    lab_nadir_table,
    performance_status_change,
    response_rates_table,
    toxicity_table,
)
from prrt.analytics.catalog import nadir_summary_sql
from prrt.analytics.labs import LAB_NADIR_COLUMNS

R_LUNG = json.loads((Path(__file__).with_name("r_survival_lung.json")).read_text())
Z = norm.ppf(0.975)


@pytest.fixture
def cohort() -> pd.DataFrame:
    # deaths at 3, 6 and 12 months; censored at 9, 15, 18, 21, 24
    return pd.DataFrame(
        {
            "sex": ["F", "M", "F", "M", "F", "M", "F", "F"],
            "os_months": [3.0, 6.0, 9.0, 12.0, 15.0, 18.0, 21.0, 24.0],
            "os_event": [1, 1, 0, 1, 0, 0, 0, 0],
        }
    )


def _log_log(s: float, se: float) -> tuple[float, float]:
    """R's conf.type = 'log-log' limits: S^exp(+/- z se / log S)."""
    return s ** math.exp(-Z * se / math.log(s)), s ** math.exp(Z * se / math.log(s))


# ------------------------------------------------------------------ km_survival_at
def test_survival_at_12_24_36_months_overall(cohort):
    table = km_survival_at_table(cohort)
    assert table["stratum_variable"].unique().tolist() == ["all"]
    rows = table.set_index("time_months")

    # S(12) = 7/8 * 6/7 * 4/5; Greenwood se of the cumulative hazard over the three deaths
    s12 = 7 / 8 * 6 / 7 * 4 / 5
    se12 = math.sqrt(1 / (8 * 7) + 1 / (7 * 6) + 1 / (5 * 4))
    at12 = rows.loc[12.0]
    assert at12["survival"] == pytest.approx(0.6)
    assert s12 == pytest.approx(0.6)
    assert (at12["ci_lower"], at12["ci_upper"]) == pytest.approx(_log_log(s12, se12), rel=1e-12)
    assert (at12["n"], at12["at_risk"], at12["events"], at12["censored"]) == (8, 5, 3, 1)
    assert at12["ci_method"] == "log-log"

    # 24 months is the last follow-up: same S, one at risk, all five censorings counted
    at24 = rows.loc[24.0]
    assert at24["survival"] == pytest.approx(0.6)
    assert (at24["at_risk"], at24["events"], at24["censored"]) == (1, 3, 5)

    # beyond follow-up: not extrapolated (R drops the time), counts are the totals
    at36 = rows.loc[36.0]
    assert math.isnan(at36["survival"]) and math.isnan(at36["ci_lower"]) and math.isnan(at36["ci_upper"])
    assert (at36["at_risk"], at36["events"], at36["censored"]) == (0, 3, 5)


def test_survival_at_per_stratum(cohort):
    table = km_survival_at_table(cohort, ["sex"], times=[12])
    female = table[(table.stratum_variable == "sex") & (table.stratum == "F")].iloc[0]
    # women: death at 3, censored at 9 -> S(12) = 4/5, at risk 15, 21, 24
    assert female["survival"] == pytest.approx(0.8)
    assert (female["n"], female["at_risk"], female["events"], female["censored"]) == (5, 3, 1, 1)
    assert (female["ci_lower"], female["ci_upper"]) == pytest.approx(_log_log(0.8, math.sqrt(1 / 20)), rel=1e-12)
    male = table[(table.stratum_variable == "sex") & (table.stratum == "M")].iloc[0]
    # men: deaths at 6 and 12 among 3 -> S(12) = 2/3 * 1/2
    assert male["survival"] == pytest.approx(1 / 3)
    assert (male["at_risk"], male["events"], male["censored"]) == (2, 2, 0)


def test_survival_at_before_the_first_event_is_one_with_a_degenerate_band():
    table = km_survival_at_table(pd.DataFrame({"os_months": [5.0, 8.0], "os_event": [1, 0]}), times=[2])
    row = table.iloc[0]
    assert (row["survival"], row["ci_lower"], row["ci_upper"], row["at_risk"], row["events"]) == (1, 1, 1, 2, 0)


# ------------------------------------------------------------------ Cox tables
@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    data = load_lung().rename(
        columns={"time": "os_months", "status": "os_event", "age": "age_at_first_cycle", "ph.ecog": "ecog_pre"}
    )
    data["sex"] = data["sex"].map({1: "male", 2: "female"})
    return data


def test_cox_univariable_table_matches_coxph_on_lung(lung):
    table = cox_univariable_table(lung, {"sex": "sex"}, numeric=["age_at_first_cycle", "ecog_pre"])
    assert table["covariate"].tolist() == ["sex", "age_at_first_cycle", "ecog_pre"]
    sex = table.set_index("term").loc["sex=male"]
    # reference 'female' (first in sorted order): R's coefficient for sex (2 = female vs 1 = male)
    # is -0.531, so male vs female is +0.531
    expected = R_LUNG["cox_sex"]
    assert sex["reference"] == "female"
    assert (sex["n"], sex["events"], sex["converged"]) == (228, 165, True)
    assert sex["coef"] == pytest.approx(-expected["coef"], abs=1e-7)
    assert sex["hr"] == pytest.approx(1 / expected["hr"], abs=1e-7)
    assert sex["hr_lower"] == pytest.approx(1 / expected["hr_upper95"], abs=1e-7)
    assert sex["hr_upper"] == pytest.approx(1 / expected["hr_lower95"], abs=1e-7)
    assert sex["p_value"] == pytest.approx(expected["p_wald"], rel=1e-6)
    assert pd.isna(sex["note"])
    ecog = table.set_index("term").loc["ecog_pre"]
    assert pd.isna(ecog["reference"]) and (ecog["n"], ecog["events"]) == (227, 164)  # one ECOG missing


def test_cox_multivariable_table_matches_coxph_on_lung(lung):
    table = cox_multivariable_table(lung)
    expected = R_LUNG["cox_age_sex_ecog_hr"]
    assert table["model"].unique().tolist() == ["age_at_first_cycle + sex + ecog_pre"]
    rows = table.set_index("term")
    assert sorted(rows.index) == ["age_at_first_cycle", "ecog_pre", "sex=male"]
    assert (rows["n"] == expected["n_used"]).all() and (rows["events"] == 164).all() and rows["converged"].all()
    assert rows.loc["age_at_first_cycle", "hr"] == pytest.approx(expected["age"], abs=1e-7)
    assert rows.loc["ecog_pre", "hr"] == pytest.approx(expected["ph.ecog"], abs=1e-7)
    assert rows.loc["sex=male", "hr"] == pytest.approx(1 / expected["sex"], abs=1e-7)
    assert rows.loc["sex=male", "reference"] == "female"
    assert rows["ph_p_value"].between(0, 1).all() and rows["ph_test_statistic"].ge(0).all()


def test_monotone_likelihood_keeps_the_rows_with_nan_estimates():
    # nobody in group B dies: the coefficient runs off to -infinity (R: "coefficient may be infinite")
    data = pd.DataFrame(
        {
            "os_months": [2.0, 4.0, 6.0, 8.0, 3.0, 5.0, 7.0, 9.0],
            "os_event": [1, 1, 1, 0, 0, 0, 0, 0],
            "group": ["A", "A", "A", "A", "B", "B", "B", "B"],
            "age_at_first_cycle": [50, 60, 70, 55, 65, 45, 58, 62],
            "ecog_pre": [1, 1, 1, 1, 1, 1, 1, 1],  # constant: cannot be fitted
        }
    )
    table = cox_univariable_table(data, {"group": "group"}).set_index("covariate")
    assert list(table.index) == ["group", "age_at_first_cycle", "ecog_pre"]
    group = table.loc["group"]
    assert (group["term"], group["reference"], group["n"], group["events"]) == ("group=B", "A", 8, 3)
    assert not group["converged"]
    assert group[["coef", "se", "hr", "hr_lower", "hr_upper", "p_value"]].isna().all()
    assert group["note"]
    assert table.loc["age_at_first_cycle", "converged"]
    assert np.isfinite(table.loc["age_at_first_cycle", "hr"])
    ecog = table.loc["ecog_pre"]
    assert not ecog["converged"] and math.isnan(ecog["hr"]) and "constant" in ecog["note"]

    multi = cox_multivariable_table(data.assign(sex=data["group"]))
    assert len(multi) == 3 and not multi["converged"].any()
    assert multi[["hr", "ph_p_value"]].isna().all().all()


# ------------------------------------------------------------------ response rates
def test_response_rates_table_unconfirmed_and_confirmed():
    patients = pd.DataFrame(
        {
            "best_overall_response": ["CR", "PR", "PR", "SD", "PD", None],
            "confirmed_best_overall_response": ["PR", "SD", "PR", "SD", "PD", None],
        }
    )
    table = response_rates_table(patients).set_index(["definition", "measure"])
    orr = table.loc[("unconfirmed", "ORR")]
    assert (orr["k"], orr["n"], orr["n_cr"], orr["n_pr"], orr["n_sd"], orr["n_pd"], orr["n_ne"], orr["n_evaluable"]) == (
        3, 6, 1, 2, 1, 1, 1, 5)
    assert orr["proportion"] == 0.5
    assert orr["ci_lower"] == pytest.approx(beta.ppf(0.025, 3, 4), rel=1e-9)
    assert orr["ci_upper"] == pytest.approx(beta.ppf(0.975, 4, 3), rel=1e-9)
    assert table.loc[("unconfirmed", "DCR"), "k"] == 4
    confirmed = table.loc[("confirmed", "ORR")]
    assert (confirmed["k"], confirmed["n_cr"], confirmed["n_sd"], confirmed["source_column"]) == (
        2, 0, 2, "confirmed_best_overall_response")
    assert table.loc[("confirmed", "DCR"), "k"] == 4
    # a missing column is skipped, not an error
    assert set(response_rates_table(patients[["best_overall_response"]])["definition"]) == {"unconfirmed"}


# ------------------------------------------------------------------ performance status
def test_improvement_direction_differs_for_ecog_and_kps():
    patients = pd.DataFrame(
        {"ecog_pre": [1, 2, 0, 1, None], "ecog_post": [0, 2, 1, 0, 1],
         "kps_pre": [80, 70, 90, 80, 70], "kps_post": [90, 70, 80, 90, 80]}
    )
    table = performance_status_change(patients).set_index("measure")
    ecog, kps = table.loc["ecog"], table.loc["kps"]
    assert (ecog["better"], ecog["n_pairs"], ecog["n_improved"], ecog["n_worsened"], ecog["n_unchanged"]) == (
        "lower", 4, 2, 1, 1)
    assert (kps["better"], kps["n_pairs"], kps["n_improved"], kps["n_worsened"], kps["n_unchanged"]) == (
        "higher", 5, 3, 1, 1)
    # ECOG differences -1, +1, -1 (all |d| = 1, mid-rank 2): W+ = 2 of 6; P(W+ <= 2) = 4/8 -> p = 1
    assert ecog["p_value"] == 1.0 and ecog["method"] == "exact-conditional"
    assert (ecog["median_before"], ecog["median_after"]) == (1.0, 0.5)


# ------------------------------------------------------------------ toxicity
def test_toxicity_table_reports_terms_never_measured():
    fct = pd.DataFrame(
        {
            "patient_key": ["a", "b", "a", "b"],
            "ctcae_term": ["Anemia", "Anemia", "Hypoalbuminemia", "Hypoalbuminemia"],
            "baseline_grade": [0, 0, None, None],
            "worst_grade": [2, 0, None, None],
        }
    )
    table = toxicity_table(fct, n_patients=4, decimals=None).set_index("ctcae_term")
    assert table.loc["Anemia", ["n_assessed", "grade_2_n", "grade_2_pct", "any_grade_n"]].tolist() == [2, 1, 25.0, 1]
    assert table.loc["Hypoalbuminemia", ["n_assessed", "any_grade_n"]].tolist() == [0, 0]


# ------------------------------------------------------------------ lab nadir
# The per-patient nadir (worst post-baseline value, first reached) is dbt's: marts.fct_lab_nadir,
# pinned by the unit test test_fct_lab_nadir_worst_first_reached. Here: its summary per analyte.
@pytest.fixture
def nadir() -> pd.DataFrame:
    rows = [
        # patient, analyte, unit, direction, baseline, nadir, day, % change
        ("a", "hemoglobin", "g/dL", "lowest", 12.0, 10.0, 60, -100 / 6),
        ("b", "hemoglobin", "g/dL", "lowest", 14.0, 13.0, 20, -100 / 14),
        ("c", "hemoglobin", "g/dL", "lowest", None, 12.5, 45, None),  # no baseline: no % change
        ("a", "creatinine", "umol/L", "highest", 80.0, 100.0, 60, 25.0),
        ("a", "albumin", "g/dL", "lowest", 4.0, 3.5, 30, -12.5),
    ]
    return pd.DataFrame(rows, columns=["patient_key", "analyte", "unit", "direction", "baseline_value", "nadir_value",
                                       "days_to_nadir", "pct_change_from_baseline"])


def summarise(nadir: pd.DataFrame) -> pd.DataFrame:
    """The per-analyte SQL summary the asset reads, run by DuckDB over these rows."""
    con = duckdb.connect()
    con.register("nadir", nadir)
    return con.execute(nadir_summary_sql("nadir")).df()


def test_lab_nadir_table_medians_and_quartiles(nadir):
    table = lab_nadir_table(summarise(nadir)).set_index("analyte")
    # 'lowest' analytes first, then 'highest', each alphabetically
    assert list(table.index) == ["albumin", "hemoglobin", "creatinine"]
    hb = table.loc["hemoglobin"]
    assert (hb["unit"], hb["direction"], hb["n_patients"], hb["n_with_baseline"]) == ("g/dL", "lowest", 3, 2)
    # days to nadir 60, 20, 45 -> median 45, quartiles (R type 7) 32.5 and 52.5
    assert (hb["days_to_nadir_median"], hb["days_to_nadir_q1"], hb["days_to_nadir_q3"]) == (45.0, 32.5, 52.5)
    # nadir values 10, 13, 12.5 -> median 12.5
    assert hb["nadir_value_median"] == 12.5
    # % change -16.67 (a) and -7.14 (b); c has no baseline
    assert hb["pct_change_median"] == pytest.approx((-100 / 6 + -100 / 14) / 2)
    # the baseline median is over the patients with a % change: 12 and 14
    assert hb["baseline_value_median"] == 13.0
    creatinine = table.loc["creatinine"]
    assert (creatinine["direction"], creatinine["n_patients"], creatinine["days_to_nadir_median"],
            creatinine["pct_change_median"]) == ("highest", 1, 60.0, 25.0)


def test_lab_nadir_quartiles_are_r_type_7_as_pandas():
    # DuckDB's quantile_cont against pandas' quantile (linear, R type 7) on uneven groups with gaps
    rng = np.random.default_rng(7)
    n = 5000
    nadir = pd.DataFrame({
        "analyte": rng.choice(["wbc", "platelets", "alt"], n, p=[0.6, 0.39, 0.01]),
        "baseline_value": np.where(rng.random(n) < 0.2, np.nan, rng.gamma(5, 2, n).round(1)),
        "nadir_value": rng.gamma(4, 2, n).round(2),
        "days_to_nadir": rng.integers(1, 400, n),
    })
    nadir["unit"] = "x"
    nadir["direction"] = np.where(nadir["analyte"] == "alt", "highest", "lowest")
    positive = nadir["baseline_value"] > 0
    nadir["pct_change_from_baseline"] = (100 * (nadir["nadir_value"] - nadir["baseline_value"])
                                         / nadir["baseline_value"]).where(positive)
    table = lab_nadir_table(summarise(nadir)).set_index("analyte")
    for analyte, g in nadir.groupby("analyte"):
        row = table.loc[analyte]
        assert row["n_patients"] == len(g) and row["n_with_baseline"] == int(g["pct_change_from_baseline"].notna().sum())
        for prefix, column in (("days_to_nadir", "days_to_nadir"), ("nadir_value", "nadir_value"),
                               ("pct_change", "pct_change_from_baseline")):
            expected = g[column].quantile([0.5, 0.25, 0.75]).tolist()
            got = [row[f"{prefix}_median"], row[f"{prefix}_q1"], row[f"{prefix}_q3"]]
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), (analyte, column)
        assert row["baseline_value_median"] == pytest.approx(
            g.loc[g["pct_change_from_baseline"].notna(), "baseline_value"].median(), rel=1e-12)


def test_lab_nadir_table_rejects_mixed_units_or_directions(nadir):
    with pytest.raises(ValueError, match="several units"):
        lab_nadir_table(summarise(nadir.assign(unit=nadir["unit"].where(nadir["patient_key"] != "b", "g/L"))))
    with pytest.raises(ValueError, match="direction"):
        lab_nadir_table(summarise(nadir.assign(direction="low")))


def test_lab_nadir_without_rows_is_empty(nadir):
    table = lab_nadir_table(summarise(nadir.iloc[:0]))
    assert table.empty and list(table.columns) == LAB_NADIR_COLUMNS
