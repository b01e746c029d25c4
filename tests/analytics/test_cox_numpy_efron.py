"""The numpy Efron Cox fit used on large cohorts (``cox._efron_fit``) gives lifelines' (and
R's) estimates: coefficients, standard errors, Wald tests, log partial likelihood and the
Schoenfeld-residual PH test, with heavy ties and collapsed identical rows; fits that are not
clean are handed back to lifelines. Also: the grouped (time, event, count) rows the survival
tables are built from give the per-patient Kaplan-Meier and log-rank results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_lung

from prrt.analytics import cox as cox_module
from prrt.analytics import fit_cox, kaplan_meier, logrank
from prrt.analytics.cox import (
    _collapse,
    _design_matrix,
    cox_zph,
    _efron_fit,
    _schoenfeld_residuals,
)
from prrt.analytics.tables import (
    _as_categories,
    _as_label_categories,
    _groups,
    cox_multivariable_table,
    cox_univariable_table,
    km_curve_table,
    km_median_table,
    logrank_table,
)

REFERENCE = json.loads((Path(__file__).with_name("r_survival_lung.json")).read_text())
# lifelines driven to the maximum: its default stop (relative log-likelihood change < 1e-14)
# leaves large-cohort coefficients ~1e-8 short of it, the numpy fit goes all the way
_TIGHT = {"precision": 1e-15, "r_precision": 0.0, "max_steps": 100}


def _cohort(n: int = 30_000, seed: int = 7) -> pd.DataFrame:
    """Survival in whole days over a short range (heavy ties: many deaths per day), a
    categorical covariate with a rare level, sex, age and ECOG, some ECOG missing."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    site = rng.choice(["gi", "lung", "pancreas", "unknown"], n, p=[0.5, 0.2, 0.25, 0.05])
    age = rng.integers(30, 85, n).astype(float)
    ecog = rng.integers(0, 4, n).astype(float)
    hazard = np.exp(0.3 * (sex == "M") + 0.02 * (age - 60) + 0.4 * ecog + 0.2 * (site == "lung"))
    days = np.ceil(rng.exponential(300 / hazard)).clip(1, 700)
    event = (days < 700) & (rng.random(n) < 0.8)
    ecog[rng.random(n) < 0.03] = np.nan
    return pd.DataFrame({"T": days, "E": event.astype(float), "sex": sex, "site": site, "age": age,
                         "ecog": ecog})


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return _cohort()


def _lifelines(data: pd.DataFrame, covariates: list[str]) -> tuple[CoxPHFitter, pd.DataFrame]:
    complete = data[["T", "E", *covariates]].dropna()
    design, _ = _design_matrix(complete, covariates, {})
    frame = pd.concat([complete[["T", "E"]], design], axis=1)
    return CoxPHFitter().fit(frame, "T", "E", fit_options=_TIGHT, batch_mode=True), frame


@pytest.mark.parametrize("covariates", [["sex"], ["site"], ["age"], ["ecog"], ["age", "sex", "ecog"],
                                        ["site", "age", "ecog", "sex"]])
def test_numpy_fit_equals_lifelines_with_heavy_ties(cohort, covariates):
    fitter, frame = _lifelines(cohort, covariates)
    assert frame["T"].nunique() < 800 and frame["E"].sum() > 15_000  # ~30 deaths a day
    result = fit_cox(cohort, "T", "E", covariates, method="numpy", ph_test=True)
    assert result.method == "numpy" and result.converged and result.fitter is None
    assert (result.n_used, result.events) == (len(frame), int(frame["E"].sum()))
    terms = result.terms.set_index("term")
    assert list(terms.index) == list(fitter.params_.index)
    summary = fitter.summary
    np.testing.assert_allclose(terms["coef"], summary["coef"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(terms["se"], summary["se(coef)"], rtol=1e-9)
    np.testing.assert_allclose(terms["hr"], summary["exp(coef)"], rtol=1e-10)
    np.testing.assert_allclose(terms["hr_lower"], summary["exp(coef) lower 95%"], rtol=1e-10)
    np.testing.assert_allclose(terms["hr_upper"], summary["exp(coef) upper 95%"], rtol=1e-10)
    np.testing.assert_allclose(terms["z"], summary["z"], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(terms["p_value"], summary["p"], rtol=1e-6, atol=1e-12)
    assert result.log_likelihood == pytest.approx(fitter.log_likelihood_, rel=1e-12)
    # R's cox.zph (cox.cox_zph) at lifelines' estimate, on the rows one by one (not collapsed)
    order = np.lexsort((frame["E"].to_numpy(), frame["T"].to_numpy()))
    columns = list(fitter.params_.index)
    assign = {c: [i for i, t in enumerate(columns) if t == c or t.startswith(f"{c}=")] for c in covariates}
    expected = cox_zph(frame["T"].to_numpy(float)[order], frame["E"].to_numpy(bool)[order],
                       frame[columns].to_numpy(float)[order], np.ones(len(frame)), fitter.params_.to_numpy(),
                       assign).set_index("term")
    ph = result.ph_test.set_index("term")
    assert list(ph.index) == [*covariates, "GLOBAL"]
    np.testing.assert_allclose(ph["test_statistic"], expected["test_statistic"], rtol=1e-8)
    np.testing.assert_allclose(ph["p_value"], expected["p_value"], rtol=1e-6, atol=1e-15)


def test_numpy_fit_is_within_lifelines_own_stopping_error_of_the_default_fit(cohort):
    covariates = ["age", "sex", "ecog"]
    fast = fit_cox(cohort, "T", "E", covariates, method="numpy", ph_test=True)
    slow = fit_cox(cohort, "T", "E", covariates, method="lifelines", ph_test=True)
    assert (fast.method, slow.method) == ("numpy", "lifelines")
    a, b = fast.terms.set_index("term"), slow.terms.set_index("term")
    assert (np.abs(a["coef"] - b["coef"]) < 1e-5 * b["se"]).all()
    np.testing.assert_allclose(a["se"], b["se"], rtol=1e-7)
    np.testing.assert_allclose(fast.ph_test["p_value"], slow.ph_test["p_value"], rtol=1e-5)


@pytest.mark.parametrize("transform", ["km", "rank", "identity", "log"])
def test_numpy_ph_test_equals_the_lifelines_path_for_each_time_transform(cohort, transform):
    # both are R's cox.zph (R's 'rank' gives tied times their mid-rank: collapsing keeps it)
    fast = fit_cox(cohort, "T", "E", ["age", "site"], method="numpy", ph_test=True, ph_time_transform=transform)
    slow = fit_cox(cohort, "T", "E", ["age", "site"], method="lifelines", ph_test=True, ph_time_transform=transform)
    assert (fast.method, slow.method) == ("numpy", "lifelines")
    ph = fast.ph_test.set_index("term")
    assert (ph["time_transform"] == transform).all() and list(ph.index) == ["age", "site", "GLOBAL"]
    assert ph["df"].tolist() == [1, 3, 4]
    # the two fits stop ~1e-7 apart in the coefficients (lifelines' relative-likelihood stop)
    np.testing.assert_allclose(ph["test_statistic"], slow.ph_test.set_index("term")["test_statistic"], rtol=1e-5)


def test_numpy_fit_matches_r_coxph_on_lung():
    lung = load_lung()
    expected = REFERENCE["cox_sex"]
    result = fit_cox(lung, "time", "status", ["sex"], method="numpy")
    assert result.method == "numpy"
    row = result.terms.iloc[0]
    # R stops its iterations ~2e-9 short of the maximum (lifelines and the numpy fit both
    # give -0.53102354000...), hence 5e-9 rather than 1e-9
    assert row["coef"] == pytest.approx(expected["coef"], abs=5e-9)
    assert row["hr"] == pytest.approx(expected["hr"], rel=5e-9)
    assert row["hr_lower"] == pytest.approx(expected["hr_lower95"], rel=5e-9)
    assert row["hr_upper"] == pytest.approx(expected["hr_upper95"], rel=5e-9)
    assert row["p_value"] == pytest.approx(expected["p_wald"], rel=1e-7)
    lifelines = fit_cox(lung, "time", "status", ["sex"], method="lifelines")
    pd.testing.assert_frame_equal(result.terms, lifelines.terms, rtol=1e-11)

    multi = fit_cox(lung, "time", "status", ["age", "sex", "ph.ecog"], method="numpy", ph_test=True)
    assert multi.method == "numpy" and (multi.n_used, multi.n_dropped, multi.events) == (227, 1, 164)
    hr = multi.terms.set_index("term")["hr"]
    for term in ("age", "sex", "ph.ecog"):
        assert hr[term] == pytest.approx(REFERENCE["cox_age_sex_ecog_hr"][term], rel=5e-9), term
    lifelines = fit_cox(lung, "time", "status", ["age", "sex", "ph.ecog"], method="lifelines", ph_test=True)
    pd.testing.assert_frame_equal(multi.terms, lifelines.terms, rtol=1e-9)
    pd.testing.assert_frame_equal(multi.ph_test, lifelines.ph_test, rtol=1e-8)
    assert multi.lr_test.statistic == pytest.approx(lifelines.lr_test.statistic, rel=1e-9)
    assert multi.score_test.statistic == pytest.approx(lifelines.score_test.statistic, rel=1e-12)
    assert multi.log_likelihood == pytest.approx(lifelines.log_likelihood, rel=1e-13)


def test_collapsed_rows_give_the_fit_of_the_rows_one_by_one(cohort):
    complete = cohort[["T", "E", "ecog", "sex"]].dropna()
    x = np.column_stack([complete["ecog"], complete["sex"] == "M"]).astype(float)
    order = np.lexsort((complete["E"], complete["T"]))
    time, event, x = complete["T"].to_numpy()[order], complete["E"].to_numpy()[order].astype(bool), x[order]
    collapsed = _collapse(time, event, x)
    assert len(collapsed[0]) < len(time) / 2 and collapsed[3].sum() == len(time)
    assert (np.diff(collapsed[0]) >= 0).all()
    by_row = _efron_fit(time, event, x, np.ones(len(time)))
    grouped = _efron_fit(*collapsed)
    np.testing.assert_allclose(grouped[0], by_row[0], rtol=1e-11)
    np.testing.assert_allclose(grouped[1], by_row[1], rtol=1e-10)
    assert grouped[2] == pytest.approx(by_row[2], rel=1e-13)
    # Schoenfeld residuals: each collapsed death row stands for count identical residuals
    beta = by_row[0]
    per_row = _schoenfeld_residuals(x, time, event, beta)
    per_group = _schoenfeld_residuals(collapsed[2], collapsed[0], collapsed[1], beta, collapsed[3])
    expanded = np.repeat(per_group, collapsed[3][collapsed[1]].astype(int), axis=0)
    np.testing.assert_allclose(np.sort(expanded, axis=0), np.sort(per_row, axis=0), rtol=1e-9, atol=1e-12)


def test_fits_that_are_not_clean_are_left_to_lifelines():
    # nobody in group B dies: monotone likelihood, the coefficient runs off to -infinity
    rng = np.random.default_rng(3)
    n = 400
    group = np.repeat(["A", "B"], n // 2)
    data = pd.DataFrame({"T": rng.integers(1, 50, n).astype(float),
                         "E": np.where(group == "A", rng.random(n) < 0.7, 0).astype(float), "g": group,
                         "rare": (np.arange(n) == 0).astype(float) * 0.001})
    numpy_result = fit_cox(data, "T", "E", ["g"], method="numpy")
    lifelines_result = fit_cox(data, "T", "E", ["g"], method="lifelines")
    assert numpy_result.method == "lifelines" and not numpy_result.converged
    assert numpy_result.messages == lifelines_result.messages
    # a covariate of very low variance: lifelines warns (and the note says so)
    low = fit_cox(data, "T", "E", ["rare"], method="numpy")
    assert low.method == "lifelines" and low.messages == fit_cox(data, "T", "E", ["rare"], method="lifelines").messages


def test_auto_uses_numpy_from_the_row_threshold(cohort, monkeypatch):
    assert fit_cox(cohort, "T", "E", ["sex"]).method == "numpy"  # 30,000 rows
    assert fit_cox(cohort.head(2000), "T", "E", ["sex"]).method == "lifelines"
    monkeypatch.setattr(cox_module, "NUMPY_MIN_ROWS", 1000)
    assert fit_cox(cohort.head(2000), "T", "E", ["sex"]).method == "numpy"
    with pytest.raises(ValueError):
        fit_cox(cohort, "T", "E", ["sex"], method="statsmodels")


def test_cox_tables_are_the_same_by_numpy_and_by_lifelines(cohort, monkeypatch):
    data = cohort.rename(columns={"T": "os_months", "E": "os_event", "age": "age_at_first_cycle", "ecog": "ecog_pre"})
    data["krenning_score"] = np.where(np.arange(len(data)) % 7 == 0, np.nan, 2 + np.arange(len(data)) % 3)
    strata = {"sex": "sex", "site": "site", "krenning_score": "krenning_score"}
    fast_uni, fast_multi = cox_univariable_table(data, strata), cox_multivariable_table(data)
    monkeypatch.setattr(cox_module, "NUMPY_MIN_ROWS", 10**9)
    slow_uni, slow_multi = cox_univariable_table(data, strata), cox_multivariable_table(data)
    for fast, slow in ((fast_uni, slow_uni), (fast_multi, slow_multi)):
        text = [c for c in fast.columns if not pd.api.types.is_float_dtype(fast[c])]
        pd.testing.assert_frame_equal(fast[text], slow[text])
        assert (np.abs(fast["coef"] - slow["coef"]) < 1e-5 * slow["se"]).all()
        pd.testing.assert_frame_equal(fast.drop(columns=text + ["coef", "p_value"]),
                                      slow.drop(columns=text + ["coef", "p_value"]), rtol=1e-6)
    assert fast_uni["term"].tolist()[:4] == ["sex=M", "site=lung", "site=pancreas", "site=unknown"]


@pytest.mark.parametrize("values", [
    pd.Series(["F", None, "M", "F", "M"]),
    pd.Series(["F", None, "M", "F", "M"], dtype="category"),
    pd.Series([3.0, None, 4.0, 3.0, 2.0]),
    pd.Series([True, False, None, True, True], dtype="object"),
])
def test_label_categories_dummy_code_as_the_text_labels(values):
    frame = pd.DataFrame({"v": values}).dropna()
    as_text = pd.DataFrame({"v": _as_categories(values)}).dropna()
    as_categories = pd.DataFrame({"v": _as_label_categories(values)}).dropna()
    text_design, text_reference = _design_matrix(as_text, ["v"], {})
    design, reference = _design_matrix(as_categories, ["v"], {})
    pd.testing.assert_frame_equal(design, text_design)
    assert reference == text_reference
    assert len(frame) == len(design)


def test_mixed_objects_are_dummy_coded_by_their_text():
    frame = pd.DataFrame({"v": pd.Series([1, "1", 2.5, "b", 2.5], dtype=object)})
    design, reference = _design_matrix(frame, ["v"], {})
    per_row = frame["v"].astype(str)
    assert reference == {"v": "1"}
    for level in ("2.5", "b"):
        np.testing.assert_array_equal(design[f"v={level}"], (per_row == level).astype(float))


def test_grouped_survival_rows_give_the_per_patient_fits(cohort):
    data = cohort.rename(columns={"T": "os_months", "E": "os_event"})
    data["site"] = data["site"].astype("category")
    groups = dict(_groups(data, {"site": "site", "ecog": "ecog"}, "os_months", "os_event"))
    overall = groups["all"][0][1]
    assert overall["_patients"].sum() == len(data) and len(overall) < 1500
    per_patient = kaplan_meier(data["os_months"], data["os_event"])
    grouped = kaplan_meier(overall["os_months"], overall["os_event"], weights=overall["_patients"])
    pd.testing.assert_frame_equal(grouped.curve(), per_patient.curve())
    assert (grouped.n, grouped.events) == (per_patient.n, per_patient.events)
    assert [s for s, _ in groups["ecog"]] == ["0", "1", "2", "3"]
    for stratum, rows in groups["site"]:
        subset = data[data["site"] == stratum]
        expected = kaplan_meier(subset["os_months"], subset["os_event"]).curve()
        got = kaplan_meier(rows["os_months"], rows["os_event"], weights=rows["_patients"]).curve()
        pd.testing.assert_frame_equal(got, expected)
    test = logrank_table(data, {"site": "site"}).iloc[0]
    expected = logrank(data["os_months"], data["os_event"], data["site"].astype(str))
    assert test["test_statistic"] == pytest.approx(expected.test_statistic, rel=1e-10)
    assert test["p_value"] == pytest.approx(expected.p_value, rel=1e-8)
    medians = km_median_table(data, {"site": "site"})
    assert medians["n"].groupby(medians["stratum_variable"]).sum().to_dict() == {"all": 4 * len(data),
                                                                               "site": 4 * len(data)}
    curve = km_curve_table(data, {"site": "site"})
    assert curve.groupby(["stratum_variable", "stratum"])["events"].sum()["all"].item() == data["os_event"].sum()
