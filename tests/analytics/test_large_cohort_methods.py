"""The faster computations used on large cohorts give the very numbers of the slow ones:
Cox fits with heavy ties (lifelines' per-distinct-time Efron), the proportional-hazards
test with numpy Schoenfeld residuals, and Cox stratum labels computed once per level."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_lung, load_rossi
from lifelines.statistics import proportional_hazard_test

from prrt.analytics import fit_cox
from prrt.analytics.cox import _FIT_OPTIONS, proportional_hazards_test
from prrt.analytics.tables import _as_categories, _label


def _tied_cohort(n: int = 4000, seed: int = 1) -> pd.DataFrame:
    """Survival in whole days over a short range, as in the warehouse: heavy ties."""
    rng = np.random.default_rng(seed)
    sex = rng.integers(0, 2, n).astype(float)
    age = rng.integers(30, 85, n).astype(float)
    ecog = rng.integers(0, 4, n).astype(float)
    hazard = np.exp(0.3 * sex + 0.02 * (age - 60) + 0.4 * ecog)
    days = np.ceil(rng.exponential(400 / hazard)).clip(1, 900)
    event = (days < 900) & (rng.random(n) < 0.8)
    return pd.DataFrame({"T": days, "E": event.astype(float), "sex": sex, "age": age, "ecog": ecog})


def _datasets() -> dict[str, pd.DataFrame]:
    lung = load_lung()[["time", "status", "age", "sex", "ph.ecog"]].dropna()
    return {
        "lung": lung.rename(columns={"time": "T", "status": "E"}),
        "rossi": load_rossi().rename(columns={"week": "T", "arrest": "E"}),
        "tied": _tied_cohort(),
    }


@pytest.mark.parametrize("name", ["lung", "rossi", "tied"])
@pytest.mark.parametrize("transform", ["km", "rank", "identity", "log"])
def test_proportional_hazards_test_equals_lifelines(name, transform):
    data = _datasets()[name]
    fitter = CoxPHFitter().fit(data, "T", "E", fit_options=_FIT_OPTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = proportional_hazard_test(fitter, data, time_transform=transform).summary
    ours = proportional_hazards_test(fitter, data, "T", "E", time_transform=transform).set_index("term")
    assert sorted(ours.index) == sorted(expected.index)
    expected = expected.loc[ours.index]
    np.testing.assert_allclose(ours["test_statistic"], expected["test_statistic"], rtol=1e-10)
    np.testing.assert_allclose(ours["p_value"], expected["p"], rtol=1e-10)
    assert (ours["time_transform"] == transform).all()


def test_cox_with_heavy_ties_equals_the_per_row_efron_fit():
    data = _tied_cohort()
    assert data["T"].nunique() <= len(data) / 2  # fit_cox takes lifelines' batch path here
    result = fit_cox(data, "T", "E", ["sex", "age", "ecog"], ph_test=True)
    per_row = CoxPHFitter().fit(data, "T", "E", fit_options=_FIT_OPTIONS, batch_mode=False)
    terms = result.terms.set_index("term")
    np.testing.assert_allclose(terms["coef"], per_row.params_[terms.index], rtol=1e-9)
    np.testing.assert_allclose(terms["se"], per_row.standard_errors_[terms.index], rtol=1e-9)
    assert result.log_likelihood == pytest.approx(per_row.log_likelihood_, rel=1e-12)


@pytest.mark.parametrize("values", [
    pd.Series([3.0, None, 4.0, 3.0]),
    pd.Series([3, None, 4, 3], dtype="Int32"),
    pd.Series(["F", None, "M", "F"]),
    pd.Series(["F", None, "M", "F"], dtype="category"),
    pd.Series([True, False, None, True], dtype="object"),
])
def test_stratum_labels_once_per_level_equal_labels_per_row(values):
    per_row = values.map(lambda v: None if pd.isna(v) else _label(v)).astype("object")
    pd.testing.assert_series_equal(_as_categories(values), per_row)
