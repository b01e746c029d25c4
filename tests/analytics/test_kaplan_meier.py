"""Kaplan-Meier details that are checkable by hand: R's median rules, bands, edge values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from prrt.analytics import kaplan_meier
from prrt.analytics.survival import _r_first_below_half

Z = norm.ppf(0.975)


def test_median_is_midpoint_of_a_flat_at_one_half():
    # S = .75, .5, .25, 0: R reports (2 + 3) / 2
    assert kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1]).median().median == 2.5
    # survfit(Surv(1:100) ~ 1): S(50) is 0.5 only up to rounding; R reports 50.5
    assert kaplan_meier(range(1, 101), [1] * 100).median().median == 50.5


def test_flat_at_one_half_to_the_end_of_follow_up_gives_its_start():
    # S = .75, .5, .5 (censored), .5 (censored): print.survfit's rule -> 2
    # (R's quantile() would instead give the midpoint with the last time, 3)
    assert kaplan_meier([1, 2, 3, 4], [1, 1, 0, 0]).median().median == 2.0


def test_median_not_reached_is_none():
    km = kaplan_meier([1, 2, 3, 4, 5], [1, 0, 0, 0, 0])
    for conf_type in ("log-log", "log", "plain"):
        median = km.median(conf_type)
        assert median.median is None and median.ci_upper is None


def test_first_below_half_rule_applies_to_bands_too():
    x = np.array([0.0, 10.0, 20.0, 30.0, 40.0])
    # band touches 0.5 (within sqrt(eps)) on a flat, then drops: midpoint of 20 and 40
    assert _r_first_below_half(np.array([1.0, 0.7, 0.5 + 1e-12, 0.5 + 1e-12, 0.3]), x) == 30.0
    # a band just above 0.5 + tolerance is not "reached"
    assert _r_first_below_half(np.array([1.0, 0.7, 0.5 + 1e-6, 0.5 + 1e-6, 0.3]), x) == 40.0
    # undefined (NaN) band values are skipped, as R's !is.na(y)
    assert _r_first_below_half(np.array([1.0, np.nan, 0.45, np.nan, np.nan]), x) == 20.0
    assert _r_first_below_half(np.array([np.nan, 0.9, 0.8, np.nan, np.nan]), x) is None


def test_greenwood_bands_by_hand():
    km = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1])
    s, se = 0.75, math.sqrt(1 / (4 * 3))  # t = 1: n = 4, d = 1
    row = km.table.index[km.table["time"] == 1][0]
    plain = km.band("plain").loc[row]
    assert plain["lower"] == pytest.approx(s - Z * se * s, rel=1e-12)
    assert plain["upper"] == pytest.approx(min(1.0, s + Z * se * s), rel=1e-12)
    log = km.band("log").loc[row]
    assert log["lower"] == pytest.approx(s * math.exp(-Z * se), rel=1e-12)
    assert log["upper"] == pytest.approx(min(1.0, s * math.exp(Z * se)), rel=1e-12)
    loglog = km.band("log-log").loc[row]
    assert loglog["lower"] == pytest.approx(math.exp(-math.exp(math.log(-math.log(s)) - Z * se / math.log(s))), rel=1e-12)
    assert loglog["upper"] == pytest.approx(math.exp(-math.exp(math.log(-math.log(s)) + Z * se / math.log(s))), rel=1e-12)


def test_bands_are_undefined_where_survival_is_zero():
    km = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1])
    last = km.table.index[km.table["time"] == 4][0]
    assert km.table.loc[last, "survival"] == 0
    for conf_type in ("log-log", "log", "plain"):
        assert km.band(conf_type).loc[last].isna().all()


def test_tidy_curve_starts_at_time_zero():
    curve = kaplan_meier([2, 3, 3, 5, 8], [1, 1, 0, 0, 1]).curve()
    assert list(curve.columns) == ["time", "survival", "ci_lower", "ci_upper", "at_risk", "events", "censored"]
    assert curve["time"].tolist() == [0, 2, 3, 5, 8]
    assert curve["at_risk"].tolist() == [5, 5, 4, 2, 1]
    assert curve["events"].tolist() == [0, 1, 1, 0, 1]
    assert curve["censored"].tolist() == [0, 0, 1, 1, 0]
    assert curve["survival"].tolist() == pytest.approx([1, 0.8, 0.6, 0.6, 0.0])
    assert curve.loc[0, ["ci_lower", "ci_upper"]].tolist() == [1.0, 1.0]


def test_survival_at_times_uses_the_step_function_and_counts_at_risk_at_t():
    km = kaplan_meier([2, 3, 3, 5, 8], [1, 1, 0, 0, 1])
    at = km.survival_at([1, 3, 4, 9])
    assert at["survival"].iloc[:3].tolist() == pytest.approx([1.0, 0.6, 0.6])
    assert at["at_risk"].tolist() == [5, 4, 2, 0]
    assert math.isnan(at["survival"].iloc[3])  # beyond follow-up: not extrapolated


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        kaplan_meier([1, 2], [1, 2])
    with pytest.raises(ValueError):
        kaplan_meier([1, float("nan")], [1, 0])
