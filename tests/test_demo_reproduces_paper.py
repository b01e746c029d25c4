"""A refresh of the bundled demo export reproduces the paper (Table 1, Table 2, text).

Expected values are the paper's; every figure is computed by the pipeline (ingest ->
dbt marts -> lifelines analytics) and read back from the published warehouse."""

from __future__ import annotations

import csv
import statistics
from statistics import NormalDist

import pytest
from lifelines import KaplanMeierFitter
from scipy.stats import beta

from .conftest import REPO

PAPER_TABLE_1 = REPO / "raw" / "paper_table1.csv"


def column(con, sql):
    return [row[0] for row in con.execute(sql).fetchall()]


def test_cohort_demographics(demo_db):
    assert demo_db.execute("SELECT count(*) FROM marts.dim_patient").fetchone()[0] == 16
    # The paper's text says 8 F / 8 M, but its Table 1 lists 9 women and 7 men; the demo
    # export follows Table 1 (raw/README.md, "Inconsistencies in the paper").
    assert dict(demo_db.execute("SELECT sex, count(*) FROM marts.dim_patient GROUP BY sex").fetchall()) == {"F": 9, "M": 7}
    ages = column(demo_db, "SELECT age_at_first_cycle FROM marts.dim_patient")
    assert (statistics.median(ages), min(ages), max(ages)) == (60.5, 24, 75)


def test_treatment(demo_db):
    cycles = column(demo_db, "SELECT n_cycles FROM marts.dim_patient")
    assert (statistics.median(cycles), min(cycles), max(cycles)) == (3.5, 1, 7)
    activity = column(demo_db, "SELECT cumulative_activity_gbq FROM marts.dim_patient")
    assert statistics.median(activity) == pytest.approx(20.35)
    assert (min(activity), max(activity)) == (pytest.approx(7.4), pytest.approx(49.95))
    per_cycle = column(demo_db, "SELECT activity_gbq FROM marts.fct_treatment_cycle")
    assert 3.7 - 1e-9 <= min(per_cycle) and max(per_cycle) <= 7.4 + 1e-9
    gaps = column(demo_db, "SELECT weeks_since_previous_cycle FROM marts.fct_treatment_cycle WHERE cycle_number > 1")
    assert all(6 <= g <= 8 for g in gaps)


def test_response_rates(demo_db):
    counts = dict(demo_db.execute(
        "SELECT best_overall_response, count(*) FROM marts.dim_patient GROUP BY 1").fetchall())
    assert counts == {"CR": 2, "PR": 11, "SD": 1, "PD": 2}


def test_performance_status_before_after(demo_db):
    row = demo_db.execute(
        "SELECT median(ecog_pre), median(ecog_post), median(kps_pre), median(kps_post) FROM marts.dim_patient"
    ).fetchone()
    assert row == (1.5, 1, 75, 80)


def test_table_2_toxicity(demo_db):
    rows = demo_db.execute(
        """SELECT ctcae_term, worst_grade, count(*) FROM marts.fct_toxicity
           WHERE worst_grade >= 1 GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    assert rows == [
        ("Anemia", 1, 7), ("Anemia", 2, 3),
        ("Creatinine increased", 1, 2),
        ("Platelet count decreased", 1, 2),
        ("White blood cell decreased", 1, 3), ("White blood cell decreased", 2, 3),
    ]


def test_survival(demo_db):
    assert demo_db.execute("SELECT sum(os_event) FROM marts.fct_survival").fetchone()[0] == 3
    median = demo_db.execute(
        "SELECT median_months FROM analytics.km_median"
        " WHERE endpoint = 'OS' AND stratum_variable = 'all' AND ci_method = 'log-log'"
    ).fetchone()[0]
    assert median == pytest.approx(23, abs=0.05)
    # the analytics table agrees with lifelines run directly on the mart
    survival = demo_db.execute("SELECT os_months, os_event FROM marts.fct_survival").df()
    kmf = KaplanMeierFitter().fit(survival["os_months"], survival["os_event"])
    assert kmf.median_survival_time_ == pytest.approx(median)


def test_spss_style_median_ci(demo_db):
    # The paper (SPSS): median OS 23 months, 95% CI 7.90-38.09. The demo's deaths are synthetic
    # (3 deaths: 4.83 months with 16 at risk, 19.71 with 4, 23.00 with 2), so its SPSS-style
    # interval differs; here it is worked out by SPSS's formula from the published curve:
    # S = 15/16, then x 3/4, then x 1/2; median 23.00 (first S <= 0.5); Greenwood
    # SE(S) = S sqrt(1/(16*15) + 1/(4*3) + 1/(2*1)); density (S(19.71) - S(23.00)) / (23.00 - 19.71)
    # -> 23.00 +/- 1.96 x 2.518 = 18.06-27.93 months
    deaths = demo_db.execute(
        "SELECT time_months, survival FROM analytics.km_curve"
        " WHERE endpoint = 'OS' AND stratum_variable = 'all' AND events > 0 ORDER BY time_months").fetchall()
    (t1, s1), (t2, s2), (t3, s3) = deaths
    assert (s1, s2, s3) == pytest.approx((15 / 16, 15 / 16 * 3 / 4, 15 / 16 * 3 / 4 / 2), rel=1e-12)
    se = s3 * (1 / (16 * 15) + 1 / (4 * 3) + 1 / (2 * 1)) ** 0.5 / ((s2 - s3) / (t3 - t2))
    median, lower, upper = demo_db.execute(
        "SELECT median_months, ci_lower, ci_upper FROM analytics.km_median"
        " WHERE endpoint = 'OS' AND stratum_variable = 'all' AND ci_method = 'spss'").fetchone()
    z = NormalDist().inv_cdf(0.975)
    assert median == pytest.approx(t3) and median == pytest.approx(23, abs=0.05)
    assert (lower, upper) == pytest.approx((t3 - z * se, t3 + z * se), rel=1e-12)
    assert (round(lower, 2), round(upper, 2)) == (18.06, 27.93)


def test_every_table_1_row_is_in_dim_patient(demo_db):
    patients = demo_db.execute(
        """SELECT sex, age_at_first_cycle, primary_site, baseline_imaging, krenning_score, n_cycles,
                  round(cumulative_activity_gbq, 2), ecog_pre, ecog_post, kps_pre, kps_post,
                  best_overall_response, prior_surgery, prior_radiotherapy, prior_chemotherapy,
                  hypertension, diabetes, metastatic_sites, cga_pre_ng_ml, cga_post_ng_ml
           FROM marts.dim_patient"""
    ).fetchall()
    unmatched = list(patients)
    with PAPER_TABLE_1.open() as handle:
        for paper in csv.DictReader(handle):
            yes = {k: paper[k] == "yes" for k in ("prior_surgery", "prior_radiotherapy", "prior_chemotherapy", "hypertension", "diabetes")}
            expected = (
                paper["sex"], int(paper["age"]), paper["primary_site"], paper["baseline_imaging"],
                int(paper["krenning_score"]) if paper["krenning_score"] else None, int(paper["n_cycles"]),
                float(paper["cumulative_activity_gbq"]), int(paper["ecog_pre"]), int(paper["ecog_post"]),
                int(paper["kps_pre"]), int(paper["kps_post"]), paper["best_response"],
                yes["prior_surgery"], yes["prior_radiotherapy"], yes["prior_chemotherapy"],
                yes["hypertension"], yes["diabetes"],
                ",".join(sorted(paper["metastases"].split(";"))) if paper["metastases"] else None,
                *(float(paper[k]) if paper[k] else None for k in ("cga_pre", "cga_post")),  # CgA, ng/mL
            )
            assert expected in unmatched, f"Table 1 patient {paper['paper_patient']} not found: {expected}"
            unmatched.remove(expected)
    assert unmatched == []


# --- the published analytics tables -------------------------------------------------------

STRATIFYING_VARIABLES = {"sex", "primary_site", "baseline_imaging", "krenning_score", "cycles_group",
                         "cumulative_activity_group", "best_response_group", "toxicity_grade_group"}


def test_published_toxicity_summary_is_table_2(demo_db):
    table = demo_db.execute("SELECT * FROM analytics.toxicity_summary").df().set_index("ctcae_term")
    paper = {  # Table 2: grade I, grade II (nothing of grade III or IV)
        "White blood cell decreased": (3, 3),
        "Anemia": (7, 3),
        "Creatinine increased": (2, 0),
        "Platelet count decreased": (2, 0),
    }
    assert (table["n_patients"] == 16).all()
    for term, row in table.iterrows():
        g1, g2 = paper.get(term, (0, 0))
        assert (row["grade_1_n"], row["grade_2_n"], row["grade_3_n"], row["grade_4_n"]) == (g1, g2, 0, 0), term
        assert (row["any_grade_n"], row["grade_3plus_n"]) == (g1 + g2, 0), term
        assert row["grade_1_pct"] == pytest.approx(100 * g1 / 16), term
        assert row["grade_2_pct"] == pytest.approx(100 * g2 / 16), term
        assert row["any_grade_pct"] == pytest.approx(100 * (g1 + g2) / 16), term
    assert set(paper) <= set(table.index)
    assert table.loc[list(paper), "n_assessed"].eq(16).all()


def test_published_response_rates(demo_db):
    rows = demo_db.execute(
        "SELECT measure, k, n, ci_lower, ci_upper, ci_method, n_cr, n_pr, n_sd, n_pd FROM analytics.response_rates"
        " WHERE definition = 'unconfirmed'"
    ).df().set_index("measure")
    orr, dcr = rows.loc["ORR"], rows.loc["DCR"]
    assert (orr["k"], orr["n"], dcr["k"], dcr["n"]) == (13, 16, 14, 16)
    assert (orr["n_cr"], orr["n_pr"], orr["n_sd"], orr["n_pd"]) == (2, 11, 1, 2)
    # Clopper-Pearson: the beta quantiles
    assert orr["ci_method"] == "clopper-pearson"
    assert orr["ci_lower"] == pytest.approx(beta.ppf(0.025, 13, 16 - 13 + 1), rel=1e-9)
    assert orr["ci_upper"] == pytest.approx(beta.ppf(0.975, 13 + 1, 16 - 13), rel=1e-9)
    assert dcr["ci_lower"] == pytest.approx(beta.ppf(0.025, 14, 16 - 14 + 1), rel=1e-9)
    assert dcr["ci_upper"] == pytest.approx(beta.ppf(0.975, 14 + 1, 16 - 14), rel=1e-9)
    # the RECIST 1.1-confirmed rates are published next to them
    confirmed = column(demo_db, "SELECT measure FROM analytics.response_rates WHERE definition = 'confirmed'")
    assert sorted(confirmed) == ["DCR", "ORR"]


def test_published_performance_status_change(demo_db):
    table = demo_db.execute("SELECT * FROM analytics.performance_status_change").df().set_index("measure")
    ecog, kps = table.loc["ecog"], table.loc["kps"]
    assert (ecog["median_before"], ecog["median_after"]) == (1.5, 1)
    assert (kps["median_before"], kps["median_after"]) == (75, 80)
    # "significantly improved (p < 0.05)": every change is an improvement
    assert (ecog["n_pairs"], ecog["n_improved"], ecog["n_worsened"]) == (16, 6, 0)
    assert (kps["n_pairs"], kps["n_improved"], kps["n_worsened"]) == (16, 7, 0)
    assert ecog["p_value"] < 0.05 and kps["p_value"] < 0.05
    # exact signed-rank test, all non-zero differences one way: p = 2 / 2^n
    assert ecog["p_value"] == pytest.approx(2 / 2**6) and kps["p_value"] == pytest.approx(2 / 2**7)
    assert set(table["method"]) == {"exact-conditional"}


def test_published_survival_at_landmarks(demo_db):
    rows = demo_db.execute(
        "SELECT time_months, survival, at_risk, events FROM analytics.km_survival_at"
        " WHERE endpoint = 'OS' AND stratum_variable = 'all' ORDER BY time_months"
    ).fetchall()
    assert [r[0] for r in rows] == [12, 24, 36]
    assert rows[0][1] is not None and 0 < rows[0][1] <= 1
    assert rows[-1][3] == 3  # all three deaths by 36 months
    # every stratum has its landmark rows
    strata = set(column(demo_db, "SELECT DISTINCT stratum_variable FROM analytics.km_survival_at WHERE endpoint = 'OS'"))
    assert strata == STRATIFYING_VARIABLES | {"all"}


def test_every_stratifying_variable_has_km_and_logrank_rows(demo_db):
    assert set(column(demo_db, "SELECT stratum_variable FROM analytics.logrank WHERE endpoint = 'OS'")) == STRATIFYING_VARIABLES
    assert set(column(demo_db, "SELECT DISTINCT stratum_variable FROM analytics.km_median WHERE endpoint = 'OS'")) == (
        STRATIFYING_VARIABLES | {"all"})
    # the paper: no factor was associated with OS at p < 0.05 -- with 3 deaths, the log-rank
    # p-values are well-formed whatever they are
    p_values = column(demo_db, "SELECT p_value FROM analytics.logrank")
    assert all(0 <= p <= 1 for p in p_values)


def test_published_cox_models_keep_non_converged_rows(demo_db):
    univariable = demo_db.execute("SELECT * FROM analytics.cox_univariable WHERE endpoint = 'OS'").df()
    assert set(univariable["covariate"]) == STRATIFYING_VARIABLES | {"age_at_first_cycle", "ecog_pre", "kps_pre"}
    day_0 = univariable["method"] == "from day 0"
    assert (univariable.loc[day_0, "events"] == 3).all()
    # response, toxicity, cycles and activity at the 6-month landmark: the deaths after it
    later = {"cycles_group", "cumulative_activity_group", "best_response_group", "toxicity_grade_group"}
    assert set(univariable.loc[~day_0, "covariate"]) == later
    assert (univariable.loc[~day_0, "landmark_months"] == 6).all() and (univariable.loc[~day_0, "events"] <= 3).all()
    # a model that did not converge carries no estimate, one that did carries a finite one
    assert univariable.loc[~univariable["converged"], "hr"].isna().all()
    assert univariable.loc[univariable["converged"], "hr"].gt(0).all()
    multivariable = demo_db.execute("SELECT * FROM analytics.cox_multivariable WHERE endpoint = 'OS'").df()
    assert multivariable["term"].tolist() == ["age_at_first_cycle", "sex=M", "ecog_pre"]
    assert (multivariable["n"] == 16).all()


def test_published_lab_nadir(demo_db):
    table = demo_db.execute("SELECT * FROM analytics.lab_nadir").df().set_index("analyte")
    assert {"hemoglobin", "wbc", "platelets", "creatinine"} <= set(table.index)
    assert (table["n_patients"] == 16).all()
    # nadirs are after the first administration, and the haematological ones are falls
    assert table["days_to_nadir_median"].gt(0).all()
    assert table.loc[["hemoglobin", "wbc", "platelets"], "pct_change_median"].lt(0).all()


def test_lab_nadir_mart_holds_the_worst_post_baseline_value_first_reached(demo_db):
    nadir = demo_db.execute("SELECT * FROM marts.fct_lab_nadir").df().set_index(["patient_key", "analyte"])
    labs = demo_db.execute(
        """SELECT l.patient_key, l.analyte, l.value, l.days_from_first_cycle, c.direction
           FROM marts.fct_lab_result l
           JOIN (SELECT DISTINCT analyte, direction FROM reference.ctcae_v4_03_lab_criteria) c USING (analyte)
           WHERE l.is_post_baseline"""
    ).df()
    assert len(nadir) == len(labs.groupby(["patient_key", "analyte"]))
    for (patient, analyte), rows in labs.groupby(["patient_key", "analyte"]):
        worst = rows["value"].min() if rows["direction"].iloc[0] == "low" else rows["value"].max()
        row = nadir.loc[(patient, analyte)]
        assert row["nadir_value"] == worst
        assert row["days_to_nadir"] == rows.loc[rows["value"] == worst, "days_from_first_cycle"].min()
        assert row["n_post_baseline_samples"] == len(rows)
    # the published summary is of that mart
    counts = dict(demo_db.execute("SELECT analyte, count(*) FROM marts.fct_lab_nadir GROUP BY analyte").fetchall())
    published = dict(demo_db.execute("SELECT analyte, n_patients FROM analytics.lab_nadir").fetchall())
    assert published == counts
