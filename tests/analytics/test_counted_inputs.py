"""Analytics from counts (one row per distinct value with its number of patients, as a GROUP BY
in the warehouse returns them) equal the same analytics on the rows they count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prrt.analytics import kaplan_meier, logrank, response_rates
from prrt.analytics.cohort import MedianRange, summarise_cohort, summarise_counts, weighted_median
from prrt.analytics.frequency import counted_frequencies, frequencies
from prrt.analytics.labs import counted_quantiles, monthly_quartiles


@pytest.fixture
def rng():
    return np.random.default_rng(20261128)


def test_kaplan_meier_and_log_rank_from_counts_equal_the_rows(rng):
    n = 5_000
    rows = pd.DataFrame({"t": rng.integers(0, 300, n) / 7.0, "e": rng.integers(0, 2, n).astype(float),
                         "g": rng.choice(["a", "b", "c"], n)})
    counts = rows.groupby(["g", "t", "e"]).size().rename("n").reset_index()
    by_rows, by_counts = kaplan_meier(rows["t"], rows["e"]), kaplan_meier(counts["t"], counts["e"], weights=counts["n"])
    assert (by_rows.n, by_rows.events) == (by_counts.n, by_counts.events)
    pd.testing.assert_frame_equal(by_rows.table, by_counts.table, check_exact=True)
    for conf_type in ("log-log", "log", "plain"):
        assert by_rows.median(conf_type) == by_counts.median(conf_type)
        times = [0, 1, 6, 12.5, 30, 1_000]
        pd.testing.assert_frame_equal(by_rows.survival_at(times, conf_type), by_counts.survival_at(times, conf_type),
                                      check_exact=True)
    a, b = logrank(rows["t"], rows["e"], rows["g"]), logrank(counts["t"], counts["e"], counts["g"], weights=counts["n"])
    assert (a.n, a.events, a.degrees_of_freedom) == (b.n, b.events, b.degrees_of_freedom)
    assert a.test_statistic == pytest.approx(b.test_statistic, rel=1e-9)
    assert a.p_value == pytest.approx(b.p_value, rel=1e-9)


def test_weights_must_be_whole_patients():
    with pytest.raises(ValueError, match="whole numbers"):
        kaplan_meier([1, 2], [1, 0], weights=[1, 0.5])
    assert kaplan_meier([1, 2, 3], [1, 0, 1], weights=[2, 0, 1]).n == 3  # a row of no patient is no observation


@pytest.mark.parametrize("size", [1, 2, 3, 10, 11, 1_001])
def test_medians_and_quantiles_from_counts_equal_pandas(rng, size):
    values = pd.Series(rng.normal(10, 3, size).round(1))
    counts = values.value_counts()
    assert weighted_median(counts.index, counts.to_numpy()) == values.median()
    assert MedianRange.of_counts(counts) == MedianRange(values.median(), values.min(), values.max())
    qs = (0.01, 0.25, 0.5, 0.75, 0.99)
    assert counted_quantiles(counts.index, counts.to_numpy(), qs) == [values.quantile(q) for q in qs]


def test_monthly_quartiles_keep_months_of_three_samples():
    counts = pd.DataFrame({"month": [0.0, 0.0, 1.0, 2.0, np.nan], "value": [10.0, 12.0, 11.0, 9.0, 5.0],
                           "n": [2, 1, 2, 5, 4]})
    table = monthly_quartiles(counts)
    assert table["month"].tolist() == [0.0, 2.0] and table["n"].tolist() == [3, 5]
    assert table.iloc[0][["q1", "median", "q3"]].tolist() == pd.Series([10.0, 10.0, 12.0]).quantile(
        [0.25, 0.5, 0.75]).tolist()


def test_cohort_summary_and_frequencies_from_counts_equal_the_rows(rng):
    n = 500
    patients = pd.DataFrame({
        "sex": rng.choice(["F", "M", None], n), "age_at_first_cycle": rng.integers(20, 90, n),
        "ecog_pre": rng.choice([0.0, 1.0, 2.0, np.nan], n), "ecog_post": rng.choice([0.0, 1.0, np.nan], n),
        "kps_pre": rng.choice([60.0, 70.0, 80.0], n), "kps_post": rng.choice([70.0, 90.0, np.nan], n),
        "best_overall_response": rng.choice(["CR", "PR", "SD", "PD", "NE", None], n),
        "os_event": rng.choice([0.0, 1.0, np.nan], n), "n_cycles": rng.choice([0, 1, 2, 4, 7], n),
        "cumulative_activity_gbq": rng.normal(20, 5, n).round(2),
        "metastatic_sites": rng.choice(["liver", "liver,bone", "bone, lung", None], n),
        "prior_surgery": rng.choice([True, False, None], n),
    })
    patients["is_treated"] = patients["n_cycles"] > 0  # dim_patient's is_treated: at least one administration
    treated = patients[patients["is_treated"]]
    counts = {c: patients[c].value_counts(dropna=False) for c in patients}
    treated_counts = {c: treated[c].value_counts() for c in ("n_cycles", "cumulative_activity_gbq")}
    summary = summarise_counts(n, counts, treated_counts)
    assert summary == summarise_cohort(patients)
    for column, sep in (("sex", None), ("metastatic_sites", ","), ("prior_surgery", None), ("n_cycles", None)):
        by_rows = frequencies(patients[column], sep=sep).sort_values(["level"]).reset_index(drop=True)
        by_counts = counted_frequencies(counts[column], sep=sep).sort_values(["level"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(by_counts, by_rows)
    responses = counts["best_overall_response"]
    assert response_rates(responses.index, weights=responses.to_numpy()) == response_rates(
        patients["best_overall_response"])
