"""Response rates, performance status and toxicity on small hand-checkable inputs."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy.stats import beta

from prrt.analytics import (
    clopper_pearson,
    paired_wilcoxon,
    performance_status_change,
    response_rates,
    toxicity_summary,
    toxicity_table,
    worst_grade_counts,
)
from prrt.analytics.performance import exact_conditional_signed_rank_p

# the paper's Table 1: best responses and ECOG/KPS before and after
PAPER_RESPONSES = ["PR", "PR", "CR", "PR", "PR", "CR", "PD", "PR", "SD", "PR", "PR", "PR", "PR", "PR", "PR", "PD"]
ECOG_PRE = [1, 2, 2, 1, 0, 0, 3, 0, 2, 1, 1, 3, 2, 0, 2, 3]
ECOG_POST = [1, 1, 1, 0, 0, 0, 3, 0, 2, 1, 1, 1, 1, 0, 1, 3]
KPS_PRE = [80, 60, 60, 90, 100, 100, 40, 100, 70, 80, 80, 60, 70, 100, 70, 50]
KPS_POST = [90, 80, 70, 100, 100, 100, 40, 100, 70, 80, 80, 80, 80, 100, 90, 50]


def test_clopper_pearson_13_of_16_equals_beta_quantiles():
    result = clopper_pearson(13, 16)
    assert result.proportion == 13 / 16
    assert result.ci_lower == pytest.approx(beta.ppf(0.025, 13, 16 - 13 + 1), rel=1e-9)
    assert result.ci_upper == pytest.approx(beta.ppf(0.975, 13 + 1, 16 - 13), rel=1e-9)


def test_clopper_pearson_edges():
    assert clopper_pearson(0, 10).ci_lower == 0.0
    assert clopper_pearson(10, 10).ci_upper == 1.0
    assert clopper_pearson(0, 10).ci_upper == pytest.approx(1 - 0.025 ** (1 / 10))


def test_paper_orr_and_dcr():
    rates = response_rates(PAPER_RESPONSES)
    assert rates.counts == {"CR": 2, "PR": 11, "SD": 1, "PD": 2, "NE/missing": 0}
    assert (rates.orr.k, rates.orr.n, rates.dcr.k, rates.dcr.n) == (13, 16, 14, 16)
    assert rates.orr.ci_lower == pytest.approx(beta.ppf(0.025, 13, 4), rel=1e-9)


def test_missing_and_ne_count_in_the_denominator_unless_evaluable_only():
    responses = ["cr", " PR ", "NE", None, "PD"]
    itt = response_rates(responses)
    assert (itt.orr.k, itt.orr.n, itt.n_evaluable) == (2, 5, 3)
    evaluable = response_rates(responses, evaluable_only=True)
    assert (evaluable.orr.k, evaluable.orr.n) == (2, 3)
    with pytest.raises(ValueError):
        response_rates(["PR", "MR"])


def test_wilcoxon_with_zeros_and_ties_uses_exact_conditional_test():
    # six patients improve (five by 1, one by 2), ten unchanged: zeros dropped, all six
    # signs negative -> P = 2 * (1/2)^6
    result = paired_wilcoxon(ECOG_PRE, ECOG_POST)
    assert (result.median_before, result.median_after) == (1.5, 1.0)
    assert (result.n_pairs, result.n_decreased, result.n_increased, result.n_unchanged) == (16, 6, 0, 10)
    assert result.method == "exact-conditional"
    assert result.p_value == pytest.approx(2 / 2**6)
    assert result.statistic == 0.0
    assert 0 < result.p_value_asymptotic < 0.05


def test_wilcoxon_without_ties_uses_scipy_exact():
    result = paired_wilcoxon([10, 20, 30, 40, 50], [11, 22, 33, 44, 55])
    assert result.method == "exact"
    assert result.p_value == pytest.approx(2 / 2**5)


def test_exact_conditional_p_by_enumeration():
    # |d| = 1, 1, 2 -> mid-ranks 1.5, 1.5, 3; W+ for d = (+1, -1, +2) is 4.5
    # sign patterns: W+ in {0, 1.5, 1.5, 3, 3, 4.5, 4.5, 6}; P(W+ >= 4.5) = 3/8 -> p = 6/8
    statistic, p = exact_conditional_signed_rank_p([1, -1, 2, 0])
    assert statistic == 1.5
    assert p == pytest.approx(0.75)


def test_wilcoxon_drops_incomplete_pairs():
    result = paired_wilcoxon([1, 2, None, 3], [0, 1, 1, None])
    assert result.n_pairs == 2


def test_performance_status_change_table():
    table = performance_status_change(
        pd.DataFrame({"ecog_pre": ECOG_PRE, "ecog_post": ECOG_POST, "kps_pre": KPS_PRE, "kps_post": KPS_POST})
    ).set_index("measure")
    assert table.loc["kps", ["median_before", "median_after"]].tolist() == [75.0, 80.0]
    assert table.loc["kps", "p_value"] == pytest.approx(2 / 2**7)  # seven improve, none worsen
    assert table.loc["ecog", "p_value"] < 0.05


def test_toxicity_table_counts_each_patient_once_at_worst_grade():
    fct = pd.DataFrame(
        {
            "patient_key": ["a", "b", "a", "c"],
            "ctcae_term": ["Anemia", "Anemia", "White blood cell decreased", "Anemia"],
            "baseline_grade": [0, 2, 1, 0],
            "worst_grade": [1, 2, 3, 0],
            "treatment_emergent_grade": [1, 0, 3, 0],  # as dbt derives it (fct_toxicity's unit test)
        }
    )
    table = toxicity_table(fct, n_patients=4).set_index("ctcae_term")
    assert table.loc["Anemia", ["grade_1_n", "grade_2_n", "grade_3_n", "grade_4_n", "any_grade_n"]].tolist() == [1, 1, 0, 0, 2]
    assert table.loc["Anemia", ["grade_1_pct", "grade_2_pct", "any_grade_pct"]].tolist() == [25.0, 25.0, 50.0]
    wbc = table.loc["White blood cell decreased"]
    assert (wbc["grade_3_n"], wbc["grade_3plus_n"], wbc["grade_3plus_pct"], wbc["n_patients"]) == (1, 1, 25.0, 4)
    assert list(table.index) == ["Anemia", "White blood cell decreased"]  # by any-grade count

    # default N = distinct patients in the frame
    assert toxicity_table(fct).loc[0, "n_patients"] == 3

    # only worsening from baseline: b stays at baseline grade 2 and drops out
    emergent = toxicity_table(fct, n_patients=4, treatment_emergent_only=True).set_index("ctcae_term")
    assert emergent.loc["Anemia", ["grade_1_n", "grade_2_n"]].tolist() == [1, 0]


def test_table_2_from_counts_by_baseline_grade_equals_the_table_from_rows():
    # what the app reads at scale: patients counted by term, baseline grade and worst grade
    fct = pd.DataFrame(
        {
            "patient_key": ["a", "b", "c", "d", "e", "a", "b", "f"],
            "ctcae_term": ["Anemia"] * 5 + ["Creatinine increased"] * 2 + ["Anemia"],
            "baseline_grade": [0, 2, 1, None, 1, 0, 3, 2],
            "worst_grade": [1, 2, 2, 3, 1, 4, 3, None],
            "treatment_emergent_grade": [1, 0, 2, 3, 0, 4, 0, None],  # as dbt derives it
        }
    )
    counts = (fct.groupby(["ctcae_term", "worst_grade", "treatment_emergent_grade"], dropna=False).size()
              .rename("n").reset_index())
    for emergent in (False, True):
        expected = toxicity_table(fct, n_patients=6, treatment_emergent_only=emergent)
        from_counts = toxicity_summary(worst_grade_counts(counts, treatment_emergent_only=emergent), 6)
        pd.testing.assert_frame_equal(from_counts, expected)
    emergent = worst_grade_counts(counts, treatment_emergent_only=True)
    anemia = emergent[emergent["ctcae_term"] == "Anemia"]
    # b (2 -> 2) and e (1 -> 1) are not worse than baseline: grade 0; d's missing baseline counts as 0;
    # f has no gradable value and stays missing
    graded = anemia.dropna(subset=["worst_grade"]).groupby("worst_grade")["n"].sum()
    assert graded.to_dict() == {0: 2, 1: 1, 2: 1, 3: 1}
    assert anemia.loc[anemia["worst_grade"].isna(), "n"].tolist() == [1]

