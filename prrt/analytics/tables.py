"""The analytics tables (schema ``analytics``) built from mart DataFrames.

Survival input: a patient-grain frame with a time in months (float) and an event (0/1) —
``os_months`` / ``os_event`` by default — plus the categorical columns to stratify by.
``build_analytics_tables`` reads every endpoint's pair side by side (``catalog.patients_sql``:
os_months, os_event, pfs_months, pfs_event, ... from marts.fct_time_to_event) and builds the
survival tables once per endpoint (``catalog.ENDPOINTS``), their rows marked by ``endpoint``. ``stratum_variable = 'all'`` (stratum 'all') is always the whole cohort;
each further stratifying variable contributes one curve / median set per level that has
data. Rows with missing time, event or stratum are left out of that stratification.

Tables (column meanings: ``catalog.TABLES``):

* km_curve:          endpoint, stratum_variable, stratum, time_months, survival, ci_lower, ci_upper,
                     at_risk, events, censored   (log-log pointwise band, time 0 included)
* km_median:         endpoint, stratum_variable, stratum, n, events, median_months, ci_lower, ci_upper,
                     ci_method   (one row per R conf.type: 'log-log', 'log', 'plain', and
                     SPSS's median +/- 1.96 SE: 'spss'; NaN where not reached)
* logrank:           endpoint, stratum_variable, test_statistic, degrees_of_freedom, p_value
                     (only for variables with >= 2 strata with data)
* km_survival_at:    S(12/24/36 months) with log-log CI, at risk, cumulative events and
                     censorings, overall and per stratum
* cox_univariable:   one Cox model per stratifying variable, age and baseline ECOG
* cox_multivariable: the prespecified model age + sex + baseline ECOG, with its LR and score
                     tests, each covariate's LR test (R drop1) and R's cox.zph per covariate + GLOBAL
  (km_survival_at and the Cox tables also per endpoint, first column ``endpoint``)
* follow_up:         median follow-up per endpoint by reverse Kaplan-Meier, three conf.types
* response_rates:    ORR / DCR with Clopper-Pearson CIs, unconfirmed and confirmed
* performance_status_change: ECOG / KPS before vs after, Wilcoxon signed-rank
* toxicity_summary:  patients by worst CTCAE grade per term (Table 2)
* lab_nadir:         time to nadir per analyte (median, IQR)

``build_analytics_tables(inputs)`` builds them all from ``{'dim_patient': ...,
'toxicity_grade_counts': ..., 'lab_nadir_summary': ...}``, the results of
``catalog.ANALYTICS_QUERIES``. Each Kaplan-Meier curve is fitted once for the three
tables that use it, and only the columns a computation needs are copied, so the memory
of a build is a small multiple of the patient frame.

Speed at a million patients: the Kaplan-Meier and log-rank computations take each stratum
as its distinct (time, event) rows with patient counts (``kaplan_meier``/``logrank``
``weights``: the same results as one row per patient, a few thousand rows instead of a
million), the categorical Cox covariates are pandas categoricals (dummy-coded from integer
codes), and ``fit_cox`` fits large models with its numpy Efron Newton-Raphson (see
``cox``). Before: ~27 s for the whole build at 1,000,000 patients, mostly lifelines' Cox.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from .catalog import (
    ALWAYS_ANALYSED,
    ENDPOINTS,
    FOLLOW_UP_ENDPOINTS,
    LANDMARK_ENDPOINTS,
    TABLES,
    endpoint_columns,
)
from .cox import TERM_COLUMNS, CoxResult, cox_drop1, cox_multivariable, fit_cox
from .distinct import distinct_rows
from .groups import cumulative_activity_group
from .labs import lab_nadir_table
from .performance import DEFAULT_PAIRS as PERFORMANCE_PAIRS
from .performance import performance_status_change
from .response import RESPONSE_DEFINITIONS, response_rates_table
from .strata import (
    ACTIVITY,
    ACTIVITY_AT_LANDMARK,
    COX_NUMERIC,
    FROM_DAY_0,
    LANDMARK,
    STRATA,
    STRATUM,
    Stratum,
    landmark_months,
)
from .survival import CONF_TYPES, MEDIAN_CI_METHODS, KaplanMeier, kaplan_meier, logrank
from .toxicity import toxicity_summary

TIME_COL = "os_months"
EVENT_COL = "os_event"
ALL = "all"

KM_CURVE_COLUMNS = ["stratum_variable", "stratum", "time_months", "survival", "ci_lower", "ci_upper",
                    "at_risk", "events", "censored"]
KM_MEDIAN_COLUMNS = ["stratum_variable", "stratum", "n", "events", "median_months", "ci_lower", "ci_upper",
                     "ci_method"]
LOGRANK_COLUMNS = ["stratum_variable", "test_statistic", "degrees_of_freedom", "p_value"]
KM_SURVIVAL_AT_COLUMNS = ["stratum_variable", "stratum", "time_months", "n", "survival", "ci_lower", "ci_upper",
                          "ci_method", "at_risk", "events", "censored"]
# the model's likelihood-ratio and score tests (R summary(coxph)), beside each term's Wald p_value
_MODEL_TEST_COLUMNS = ["lr_statistic", "lr_df", "lr_p_value", "score_statistic", "score_p_value"]
# per covariate: its likelihood-ratio test (R drop1) and R's cox.zph, then cox.zph's GLOBAL test
_COVARIATE_TEST_COLUMNS = ["covariate_lr_statistic", "covariate_lr_df", "covariate_lr_p_value"]
_PH_TEST_COLUMNS = ["ph_test_statistic", "ph_df", "ph_p_value", "ph_global_statistic", "ph_global_df",
                    "ph_global_p_value"]
COX_UNIVARIABLE_COLUMNS = ["covariate", "term", "reference", "n", "events", "coef", "se", "hr", "hr_lower",
                           "hr_upper", "p_value",
                           *_MODEL_TEST_COLUMNS,
                           "converged", "note"]
COX_MULTIVARIABLE_COLUMNS = ["model", "term", "reference", "n", "events", "coef", "se", "hr", "hr_lower",
                             "hr_upper", "p_value",
                             *_MODEL_TEST_COLUMNS, *_COVARIATE_TEST_COLUMNS, *_PH_TEST_COLUMNS,
                             "converged", "note"]

FOLLOW_UP_COLUMNS = ["n", "events", "censored", "median_months", "ci_lower", "ci_upper", "ci_method"]
# the tables built once per endpoint (their first column is ``endpoint``)
BY_ENDPOINT: tuple[str, ...] = ("km_curve", "km_median", "logrank", "km_survival_at", "cox_univariable",
                                "cox_multivariable")

SURVIVAL_AT_MONTHS: tuple[float, ...] = (12.0, 24.0, 36.0)
# numeric covariates of the univariable Cox models, besides the stratifying variables
COX_NUMERIC_COVARIATES: tuple[str, ...] = tuple(COX_NUMERIC)
# the prespecified multivariable model (few deaths: kept small, chosen before looking at the data)
COX_MULTIVARIABLE_MODEL: tuple[str, ...] = ("age_at_first_cycle", "sex", "ecog_pre")

# stratum_variable -> dim_patient column of the strata compared from day 0 (the baseline factors);
# the strata known after day 0 are analysed at the landmark (``_analyses``)
DEFAULT_STRATA: dict[str, str] = {s.variable: s.column for s in STRATA if s.landmark_column is None}

Strata = Sequence[str] | Mapping[str, str]


def add_derived_groups(dim_patient: pd.DataFrame, *, copy: bool = True) -> pd.DataFrame:
    """A copy of ``dim_patient`` with the one group that depends on the cohort analysed:
    ``cumulative_activity_group``, the median split of cumulative_activity_gbq (the other groups
    are dim_patient columns, defined in dbt). ``copy=False``: a shallow copy (the new column is not
    added to ``dim_patient``, but the existing ones share its data: do not modify them in place)."""
    out = dim_patient.copy(deep=copy)
    if ACTIVITY in out:
        out["cumulative_activity_group"] = cumulative_activity_group(out[ACTIVITY])
    return out


def landmark(frame: pd.DataFrame, time_col: str, months: float) -> pd.DataFrame:
    """The landmark cohort: rows whose time (event or censoring) is at or after ``months``, their
    time counted from the landmark (Anderson, Cain & Gelber 1983). Rows without a time are dropped."""
    time = pd.to_numeric(frame[time_col], errors="coerce")
    kept = (time >= months).to_numpy()
    return frame[kept].assign(**{time_col: time[kept] - months})


def landmark_frame(prepared: pd.DataFrame, time_col: str, event_col: str, months: float,
                   columns: Sequence[str] = (), weights: str | None = None) -> pd.DataFrame:
    """The landmark cohort of one endpoint (``landmark``: followed up to ``months``, time from the
    landmark) with ``columns`` and the median split of the activity given before the landmark among
    the patients of the landmark cohort (``cumulative_activity_group_at_landmark``). ``weights``: the
    column of patient counts when ``prepared`` is rows of counts."""
    extra = [*columns, ACTIVITY_AT_LANDMARK, *([weights] if weights else [])]
    keep = [time_col, event_col, *(c for c in dict.fromkeys(extra) if c in prepared and c not in (time_col, event_col))]
    frame = landmark(prepared[keep], time_col, months)
    if ACTIVITY_AT_LANDMARK in frame:
        group = cumulative_activity_group(frame[ACTIVITY_AT_LANDMARK], frame[weights] if weights else None)
        frame = frame.assign(**{STRATUM["cumulative_activity_group"].landmark_column: group})
    return frame


def _analyses(prepared: pd.DataFrame, time_col: str, event_col: str, months: float,
              strata: Sequence[Stratum] = STRATA) -> Iterator[tuple[str, float, pd.DataFrame, dict[str, str]]]:
    """(method, landmark_months, frame, {stratum_variable: column}): the baseline strata from day 0
    on ``prepared``, then the strata known after day 0 on the landmark cohort (``landmark_frame``)."""
    day_0 = {s.variable: s.column for s in strata if s.landmark_column is None and s.column in prepared}
    yield FROM_DAY_0, np.nan, prepared, day_0
    later = [s for s in strata if s.landmark_column is not None]
    if not later or months is None:
        return
    frame = landmark_frame(prepared, time_col, event_col, months, [s.landmark_column for s in later])
    columns = {s.variable: s.landmark_column for s in later if s.landmark_column in frame}
    if columns:
        yield LANDMARK, float(months), frame, columns


def _with_method(table: pd.DataFrame, method: str, months: float, after: str) -> pd.DataFrame:
    """``table`` with ``method`` and ``landmark_months`` inserted after its column ``after``."""
    table = table.copy()
    at = table.columns.get_loc(after) + 1
    table.insert(at, "landmark_months", months)
    table.insert(at, "method", method)
    return table.astype({"landmark_months": float})


def _normalise_strata(strata: Strata | None) -> dict[str, str]:
    if strata is None:
        return {}
    if isinstance(strata, Mapping):
        return dict(strata)
    return {name: name for name in strata}


def _label(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _complete(df: pd.DataFrame, time_col: str, event_col: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows with a numeric time and event; only ``columns`` besides them (all when None)."""
    keep = list(df.columns) if columns is None else [time_col, event_col, *dict.fromkeys(
        c for c in columns if c not in (time_col, event_col))]
    time = pd.to_numeric(df[time_col], errors="coerce")
    event = pd.to_numeric(df[event_col], errors="coerce")
    columns = {c: df[c] for c in keep} | {time_col: time, event_col: event}
    complete = (time.notna() & event.notna()).to_numpy()
    if complete.all():  # the columns as they are (a new frame; they are not modified in place)
        return pd.DataFrame(columns, copy=False)
    return pd.DataFrame({c: v[complete] for c, v in columns.items()}, copy=False)


# column of the grouped survival rows: how many patients share the row's time and event
_PATIENTS = "_patients"


def _level_codes(values: pd.Series, levels: Sequence[object]) -> np.ndarray:
    """The position of each value in ``levels`` (-1 where missing or not a level)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        position = np.full(len(values.cat.categories) + 1, -1, dtype=np.int64)  # last: missing (code -1)
        position[values.cat.categories.get_indexer(pd.Index(levels, dtype=values.cat.categories.dtype))] = \
            np.arange(len(levels))
        return position[values.cat.codes.to_numpy()]
    codes, uniques = pd.factorize(values)
    position = pd.Index(levels, dtype=object).get_indexer(pd.Index(uniques, dtype=object))
    return np.append(position, -1)[codes]


def _grouped_rows(level: np.ndarray, n_levels: int, time_code: np.ndarray, times: np.ndarray,
                  event_code: np.ndarray, event_values: np.ndarray, time_col: str, event_col: str
                  ) -> list[pd.DataFrame]:
    """Per level 0 .. n_levels-1: its distinct (time, event) rows with their patient counts
    (``_PATIENTS``), sorted by time then event. ``level`` -1 rows belong to no level."""
    inside = np.flatnonzero(level >= 0)
    row, counts = distinct_rows([(level[inside], n_levels), (time_code[inside], len(times)),
                                 (event_code[inside], len(event_values))])
    row = inside[row]
    bounds = np.searchsorted(level[row], np.arange(n_levels + 1))
    return [
        pd.DataFrame({time_col: times[time_code[row[a:b]]], event_col: event_values[event_code[row[a:b]]],
                      _PATIENTS: counts[a:b]})
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _groups(
    df: pd.DataFrame, strata: Strata | None, time_col: str, event_col: str, include_all: bool = True
) -> Iterator[tuple[str, list[tuple[str, pd.DataFrame]]]]:
    """(stratum_variable, [(stratum, rows), ...]) — 'all' first, then each variable's levels.

    Each group's rows are its distinct (time, event) pairs with the number of patients of
    each (column ``_PATIENTS``): the Kaplan-Meier and log-rank computations take them as
    patient counts (``weights``), the same fits as on one row per patient (a million
    patients have a few thousand distinct times)."""
    strata = _normalise_strata(strata)
    missing = [(variable, column) for variable, column in strata.items() if column not in df]
    if missing:
        variable, column = missing[0]
        raise KeyError(f"stratifying column {column!r} (for {variable!r}) not in the frame")
    frame = _complete(df, time_col, event_col, list(strata.values()))
    time_code, times = pd.factorize(frame[time_col].to_numpy(), sort=True)
    event_code, event_values = pd.factorize(frame[event_col].to_numpy(), sort=True)
    times, event_values = np.asarray(times), np.asarray(event_values)

    def rows_of(level: np.ndarray, n_levels: int) -> list[pd.DataFrame]:
        return _grouped_rows(level, n_levels, time_code, times, event_code, event_values, time_col, event_col)

    if include_all:
        yield ALL, [(ALL, rows_of(np.zeros(len(frame), dtype=np.int64), 1)[0])]
    for variable, column in strata.items():
        values = frame[column]
        present = values[values.notna().to_numpy()]
        if isinstance(present.dtype, pd.CategoricalDtype):
            counts = present.value_counts(sort=False)
            levels = [lvl for lvl in present.cat.categories if counts.get(lvl, 0) > 0]
        else:
            levels = sorted(present.unique(), key=lambda v: (not isinstance(v, (int, float, np.number)), v))
        groups = rows_of(_level_codes(values, levels), len(levels))
        yield variable, [(_label(level), rows) for level, rows in zip(levels, groups, strict=True)]


def _fits(
    df: pd.DataFrame, strata: Strata | None, time_col: str, event_col: str, include_all: bool = True
) -> Iterator[tuple[str, list[tuple[str, pd.DataFrame, KaplanMeier]]]]:
    """``_groups`` with each non-empty group's Kaplan-Meier fit: (variable, [(stratum, rows, km)])."""
    for variable, groups in _groups(df, strata, time_col, event_col, include_all):
        yield variable, [(stratum, rows, kaplan_meier(rows[time_col], rows[event_col], weights=rows[_PATIENTS]))
                         for stratum, rows in groups if not rows.empty]


def _curve_rows(variable: str, stratum: str, km: KaplanMeier, conf_type: str) -> pd.DataFrame:
    curve = km.curve(conf_type).rename(columns={"time": "time_months"})
    curve.insert(0, "stratum", stratum)
    curve.insert(0, "stratum_variable", variable)
    return curve


def _curve_table(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(columns=KM_CURVE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[KM_CURVE_COLUMNS]


def _median_rows(variable: str, stratum: str, km: KaplanMeier, conf_types: Sequence[str]) -> list[dict]:
    rows = []
    for conf_type in conf_types:
        m = km.median(conf_type)
        rows.append(
            {
                "stratum_variable": variable,
                "stratum": stratum,
                "n": km.n,
                "events": km.events,
                "median_months": np.nan if m.median is None else m.median,
                "ci_lower": np.nan if m.ci_lower is None else m.ci_lower,
                "ci_upper": np.nan if m.ci_upper is None else m.ci_upper,
                "ci_method": conf_type,
            }
        )
    return rows


def _median_table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=KM_MEDIAN_COLUMNS)
    return table.astype({"n": "int64", "events": "int64", "median_months": float, "ci_lower": float, "ci_upper": float})


def _logrank_row(variable: str, groups: Sequence[tuple[str, pd.DataFrame]], time_col: str,
                 event_col: str) -> dict | None:
    """The log-rank test across the non-empty groups of a variable (None for 'all' or one group)."""
    groups = [(s, g) for s, g in groups if not g.empty]
    if variable == ALL or len(groups) < 2:
        return None
    times = np.concatenate([g[time_col].to_numpy(float) for _, g in groups])
    events = np.concatenate([g[event_col].to_numpy(float) for _, g in groups])
    patients = np.concatenate([g[_PATIENTS].to_numpy(float) for _, g in groups])
    labels = np.repeat(np.array([s for s, _ in groups], dtype=object), [len(g) for _, g in groups])
    result = logrank(times, events, labels, weights=patients)
    return {
        "stratum_variable": variable,
        "test_statistic": result.test_statistic,
        "degrees_of_freedom": result.degrees_of_freedom,
        "p_value": result.p_value,
    }


def _logrank_table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=LOGRANK_COLUMNS)
    return table.astype({"test_statistic": float, "degrees_of_freedom": "int64", "p_value": float})


def km_curve_table(
    df: pd.DataFrame,
    strata: Strata | None = None,
    *,
    time_col: str = TIME_COL,
    event_col: str = EVENT_COL,
    conf_type: str = "log-log",
) -> pd.DataFrame:
    return _curve_table([_curve_rows(variable, stratum, km, conf_type)
                         for variable, fits in _fits(df, strata, time_col, event_col) for stratum, _, km in fits])


def km_median_table(
    df: pd.DataFrame,
    strata: Strata | None = None,
    *,
    time_col: str = TIME_COL,
    event_col: str = EVENT_COL,
    conf_types: Sequence[str] = MEDIAN_CI_METHODS,
) -> pd.DataFrame:
    return _median_table([row for variable, fits in _fits(df, strata, time_col, event_col)
                          for stratum, _, km in fits for row in _median_rows(variable, stratum, km, conf_types)])


def logrank_table(
    df: pd.DataFrame,
    strata: Strata | None = None,
    *,
    time_col: str = TIME_COL,
    event_col: str = EVENT_COL,
) -> pd.DataFrame:
    rows = (_logrank_row(variable, groups, time_col, event_col)
            for variable, groups in _groups(df, strata, time_col, event_col))
    return _logrank_table([row for row in rows if row is not None])


def _survival_tables(
    df: pd.DataFrame,
    strata: Strata | None,
    times: Sequence[float] | None,
    *,
    time_col: str,
    event_col: str,
    include_all: bool = True,
) -> dict[str, pd.DataFrame]:
    """km_curve, km_median, logrank (and km_survival_at when ``times`` is given) in one pass:
    one Kaplan-Meier fit per stratum serves every table, then is let go. ``include_all``: with
    the whole cohort's rows (stratum_variable 'all')."""
    curves, medians, tests, landmarks = [], [], [], []
    for variable, fits in _fits(df, strata, time_col, event_col, include_all):
        for stratum, _, km in fits:
            curves.append(_curve_rows(variable, stratum, km, "log-log"))
            medians += _median_rows(variable, stratum, km, MEDIAN_CI_METHODS)
            if times is not None:
                landmarks.append(_survival_at_rows(variable, stratum, km, times, "log-log"))
        row = _logrank_row(variable, [(stratum, rows) for stratum, rows, _ in fits], time_col, event_col)
        if row is not None:
            tests.append(row)
    tables = {"km_curve": _curve_table(curves), "km_median": _median_table(medians), "logrank": _logrank_table(tests)}
    if times is not None:
        tables["km_survival_at"] = _survival_at_table(landmarks)
    return tables


def build_survival_tables(
    df: pd.DataFrame,
    strata: Strata | None = None,
    *,
    time_col: str = TIME_COL,
    event_col: str = EVENT_COL,
) -> dict[str, pd.DataFrame]:
    """All three contract tables: {'km_curve': ..., 'km_median': ..., 'logrank': ...}."""
    return _survival_tables(df, strata, None, time_col=time_col, event_col=event_col)


def available_strata(df: pd.DataFrame, strata: Mapping[str, str] = DEFAULT_STRATA) -> dict[str, str]:
    """The subset of ``strata`` whose columns exist in ``df`` (e.g. after ``add_derived_groups``)."""
    return {variable: column for variable, column in strata.items() if column in df}


def km_survival_at_table(
    df: pd.DataFrame,
    strata: Strata | None = None,
    times: Sequence[float] = SURVIVAL_AT_MONTHS,
    *,
    time_col: str = TIME_COL,
    event_col: str = EVENT_COL,
    conf_type: str = "log-log",
) -> pd.DataFrame:
    """S(t) at each of ``times`` with CI, at risk and cumulative counts, overall and per
    stratum (``KaplanMeier.survival_at``: NaN survival after the last observed time)."""
    return _survival_at_table([_survival_at_rows(variable, stratum, km, times, conf_type)
                               for variable, fits in _fits(df, strata, time_col, event_col)
                               for stratum, _, km in fits])


def _survival_at_rows(variable: str, stratum: str, km: KaplanMeier, times: Sequence[float],
                      conf_type: str) -> pd.DataFrame:
    at = km.survival_at(times, conf_type).rename(columns={"time": "time_months"})
    at.insert(0, "n", km.n)
    at.insert(0, "stratum", stratum)
    at.insert(0, "stratum_variable", variable)
    at["ci_method"] = conf_type
    return at


def _survival_at_table(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(columns=KM_SURVIVAL_AT_COLUMNS)
    table = pd.concat(frames, ignore_index=True)[KM_SURVIVAL_AT_COLUMNS]
    return table.astype({"n": "int64", "at_risk": "int64", "events": "int64", "censored": "int64"})


def _as_categories(values: pd.Series) -> pd.Series:
    """Stratum labels as text (missing stays missing), so Cox models dummy-code them.
    Each distinct value is labelled once (a million patients have a handful of levels)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    labels = np.array([_label(v) for v in uniques] + [None], dtype=object)
    return pd.Series(labels[codes], index=values.index, dtype="object")


def _as_label_categories(values: pd.Series) -> pd.Series:
    """``_as_categories`` as a pandas categorical whose categories are the labels in sorted
    order: ``fit_cox`` dummy-codes it exactly as the text (same levels, reference and term
    names) but from integer codes, without a million Python strings per covariate."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    labels = [_label(v) for v in uniques]
    categories = sorted(set(labels))
    position = {label: i for i, label in enumerate(categories)}
    recode = np.array([position[label] for label in labels] + [-1], dtype=np.int64)  # last: missing
    return pd.Series(pd.Categorical.from_codes(recode[codes], categories=categories), index=values.index)


def _cox_rows(result: CoxResult) -> pd.DataFrame:
    """The terms of a fit, with the estimates blanked when it did not converge: the
    coefficients of a monotone likelihood run off to +/- infinity and mean nothing."""
    terms = result.terms.copy()
    if not result.converged:
        terms[TERM_COLUMNS[1:]] = np.nan
    covariate_of = {}
    for covariate in result.covariates:
        for term in terms["term"]:
            if term == covariate or term.startswith(f"{covariate}="):
                covariate_of[term] = covariate
    terms["reference"] = [result.reference_levels.get(covariate_of.get(t, t)) for t in terms["term"]]
    terms["covariate_of_term"] = [covariate_of.get(t, t) for t in terms["term"]]
    lr, score = (result.lr_test, result.score_test) if result.converged else (None, None)
    terms["lr_statistic"] = np.nan if lr is None else lr.statistic
    terms["lr_df"] = len(terms)
    terms["lr_p_value"] = np.nan if lr is None else lr.p_value
    terms["score_statistic"] = np.nan if score is None else score.statistic
    terms["score_p_value"] = np.nan if score is None else score.p_value
    terms["n"] = result.n_used
    terms["events"] = result.events
    terms["converged"] = result.converged
    notes = list(dict.fromkeys(m for m in result.messages if m))
    terms["note"] = "; ".join(notes) if notes else None
    return terms


def cox_univariable_table(
    df: pd.DataFrame,
    categorical: Strata | None = None,
    numeric: Sequence[str] = COX_NUMERIC_COVARIATES,
    *,
    time_col: str = TIME_COL,
    event_col: str = EVENT_COL,
    references: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One Cox model per covariate, each on its own complete cases (``references``: a categorical
    covariate's reference level, else the first in sorted order).

    ``categorical``: {covariate name: column}, entered as categories (the stratifying
    variables); ``numeric``: columns entered per unit. Never raises for a model that
    cannot be fitted: its rows carry converged = False, NaN estimates and a note.
    """
    categorical = _normalise_strata(categorical)
    frame = _complete(df, time_col, event_col, [*categorical.values(), *(c for c in numeric if c in df)])
    covariates: list[str] = []
    data = frame[[time_col, event_col]].copy()
    for name, column in categorical.items():
        data[name] = _as_label_categories(frame[column])
        covariates.append(name)
    for column in numeric:
        if column in frame:
            data[column] = pd.to_numeric(frame[column], errors="coerce")
            covariates.append(column)
    frames = []
    for covariate in covariates:
        if not data[covariate].notna().any():  # never recorded (e.g. Ki-67 not exported): nothing to model
            continue
        reference = {covariate: references[covariate]} if references and covariate in references else None
        terms = _cox_rows(fit_cox(data, time_col, event_col, [covariate], reference_levels=reference))
        terms.insert(0, "covariate", covariate)
        frames.append(terms)
    if not frames:
        return pd.DataFrame(columns=COX_UNIVARIABLE_COLUMNS)
    table = pd.concat(frames, ignore_index=True)[COX_UNIVARIABLE_COLUMNS]
    return table.astype({"n": "int64", "events": "int64", "lr_df": "int64", "converged": bool})


def cox_multivariable_table(
    df: pd.DataFrame,
    covariates: Sequence[str] = COX_MULTIVARIABLE_MODEL,
    *,
    categorical: Sequence[str] = ("sex",),
    time_col: str = TIME_COL,
    event_col: str = EVENT_COL,
) -> pd.DataFrame:
    """One multivariable Cox model on complete cases, one row per term, with the model's
    likelihood-ratio and score tests, each covariate's likelihood-ratio test (R ``drop1``:
    one test for all the dummies of a categorical covariate) and R's ``cox.zph`` per
    covariate with its GLOBAL test. ``categorical`` covariates are dummy-coded (first
    level in sorted order as reference); the others enter per unit."""
    frame = _complete(df, time_col, event_col, list(covariates))
    data = frame[[time_col, event_col]].copy()
    for column in covariates:
        data[column] = _as_label_categories(frame[column]) if column in categorical else pd.to_numeric(
            frame[column], errors="coerce")
    result = cox_multivariable(data, time_col, event_col, list(covariates))
    terms = _cox_rows(result)
    terms.insert(0, "model", " + ".join(covariates))
    covariate = terms["covariate_of_term"]
    n_terms = covariate.map(covariate.value_counts()).astype("int64")
    drop1 = cox_drop1(data, time_col, event_col, list(covariates), full=result).set_index("covariate")
    terms["covariate_lr_statistic"] = covariate.map(drop1["test_statistic"]).astype(float)
    terms["covariate_lr_df"] = n_terms
    terms["covariate_lr_p_value"] = covariate.map(drop1["p_value"]).astype(float)
    terms["ph_df"] = n_terms
    terms["ph_global_df"] = len(terms)
    if result.converged and result.ph_test is not None:
        ph = result.ph_test.set_index("term")
        terms["ph_test_statistic"] = covariate.map(ph["test_statistic"]).astype(float)
        terms["ph_p_value"] = covariate.map(ph["p_value"]).astype(float)
        terms["ph_global_statistic"] = float(ph.loc["GLOBAL", "test_statistic"])
        terms["ph_global_p_value"] = float(ph.loc["GLOBAL", "p_value"])
    else:
        for column in ("ph_test_statistic", "ph_p_value", "ph_global_statistic", "ph_global_p_value"):
            terms[column] = np.nan
    table = terms[COX_MULTIVARIABLE_COLUMNS]
    return table.astype({"n": "int64", "events": "int64", "lr_df": "int64", "covariate_lr_df": "int64",
                         "ph_df": "int64", "ph_global_df": "int64", "converged": bool})


def follow_up_table(
    df: pd.DataFrame,
    *,
    time_col: str = TIME_COL,
    event_col: str = EVENT_COL,
    conf_types: Sequence[str] = CONF_TYPES,
) -> pd.DataFrame:
    """Median follow-up by the reverse Kaplan-Meier method: the Kaplan-Meier curve of the time to
    censoring (censored = the event, the endpoint's events censored), as R's
    ``survfit(Surv(time, 1 - event) ~ 1)``, median and CI per conf.type: n, events (of the endpoint),
    censored, median_months, ci_lower, ci_upper, ci_method. Empty without complete rows."""
    frame = _complete(df, time_col, event_col, [])
    reverse = frame.assign(**{event_col: 1 - frame[event_col]})
    rows = [row for _, fits in _fits(reverse, None, time_col, event_col) for _, _, km in fits
            for row in _median_rows(ALL, ALL, km, conf_types)]
    table = _median_table(rows).rename(columns={"events": "censored"})
    table.insert(1, "events", table["n"] - table["censored"])
    return table[FOLLOW_UP_COLUMNS]


def analysed_endpoints(patients: pd.DataFrame) -> list[str]:
    """The endpoints of ``catalog.ENDPOINTS`` whose columns the frame has: those of ``ALWAYS_ANALYSED``
    always, the others (TTP, DOR) when they have at least one event."""
    found = []
    for endpoint in ENDPOINTS:
        time_col, event_col = endpoint_columns(endpoint)
        if time_col not in patients or event_col not in patients:
            continue
        events = pd.to_numeric(patients[event_col], errors="coerce")
        if endpoint in ALWAYS_ANALYSED or (events[pd.to_numeric(patients[time_col], errors="coerce").notna()] == 1).any():
            found.append(endpoint)
    return found


def _with_endpoint(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The endpoints' frames of one table stacked, ``endpoint`` as their first column."""
    parts = [frame.assign(endpoint=endpoint) for endpoint, frame in frames.items()]
    table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].copy()
    return table[["endpoint", *(c for c in table.columns if c != "endpoint")]]


def _treated(patients: pd.DataFrame) -> pd.DataFrame:
    """The treated cohort (``is_treated``; everyone when the column is absent)."""
    if "is_treated" not in patients:
        return patients
    return patients[patients["is_treated"].fillna(False).astype(bool)]


def cox_univariable_analyses(prepared: pd.DataFrame, time_col: str, event_col: str, months: float | None,
                             strata: Sequence[Stratum] = STRATA) -> pd.DataFrame:
    """The univariable Cox models of one endpoint (``cox_univariable_table``) marked by ``method`` and
    ``landmark_months``: the baseline strata (as categories) and ``COX_NUMERIC`` (per unit) from day 0,
    the strata known after day 0 at the landmark ``months`` (``_analyses``)."""
    return _cox_of(list(_analyses(prepared, time_col, event_col, months, strata)), time_col, event_col, strata)


def _cox_of(analyses: Sequence[tuple[str, float, pd.DataFrame, dict[str, str]]], time_col: str, event_col: str,
            strata: Sequence[Stratum]) -> pd.DataFrame:
    """``cox_univariable_analyses`` of the frames ``_analyses`` gave."""
    references = {s.variable: s.reference for s in strata if s.reference is not None}
    parts = [_with_method(cox_univariable_table(frame, columns, COX_NUMERIC_COVARIATES if method == FROM_DAY_0 else (),
                                                time_col=time_col, event_col=event_col, references=references),
                          method, at, "covariate")
             for method, at, frame, columns in analyses]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def survival_analyses(prepared: pd.DataFrame, time_col: str, event_col: str, months: float | None,
                      strata: Sequence[Stratum] = STRATA) -> dict[str, pd.DataFrame]:
    """km_curve, km_median, logrank, km_survival_at and cox_univariable (``cox_univariable_analyses``)
    of one endpoint, each row marked by how it was compared (``method``, ``landmark_months``): the
    whole cohort and the baseline strata from day 0, the strata known after day 0 at the landmark
    ``months`` (``_analyses``: the landmark cohort is built once for all of them)."""
    analyses = list(_analyses(prepared, time_col, event_col, months, strata))
    parts: dict[str, list[pd.DataFrame]] = {"km_curve": [], "km_median": [], "logrank": [], "km_survival_at": []}
    for method, at, frame, columns in analyses:
        tables = _survival_tables(frame, columns, SURVIVAL_AT_MONTHS, time_col=time_col, event_col=event_col,
                                  include_all=method == FROM_DAY_0)
        for name, table in tables.items():
            parts[name].append(_with_method(table, method, at, "stratum_variable" if name == "logrank" else "stratum"))
    tables = {name: pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
              for name, frames in parts.items()}
    tables["cox_univariable"] = _cox_of(analyses, time_col, event_col, strata)
    return tables


def build_analytics_tables(
    inputs: Mapping[str, pd.DataFrame],
    *,
    strata: Sequence[Stratum] = STRATA,
    landmark_at: float | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table of ``catalog.TABLES`` from the results of ``catalog.ANALYTICS_QUERIES``.

    ``inputs``: {'dim_patient': one row per patient (``catalog.PATIENT_COLUMNS`` and each endpoint's
    months and event, ``catalog.patients_sql``; os_months / os_event are required, the other
    endpoints are analysed when their columns are there, ``analysed_endpoints``),
    'toxicity_grade_counts': ctcae_term, worst_grade, n (``toxicity.grade_counts``),
    'lab_nadir_summary': marts.fct_lab_nadir summarised per analyte (``catalog.nadir_summary_sql``)}.
    ``dim_patient`` is required; without ``toxicity_grade_counts`` ``toxicity_summary`` is
    left out, without ``lab_nadir_summary`` ``lab_nadir`` is. The activity median split is
    added to ``dim_patient`` (``add_derived_groups``; the other groups are its dbt columns) and
    the ``strata`` whose columns exist are used for the survival tables and the univariable Cox
    models (``survival_analyses``: those known after day 0 at the landmark ``landmark_at``, by
    default the dbt var ``landmark_months``). Response, performance status and toxicity are of
    the treated cohort (``is_treated``).
    """
    patients = inputs["dim_patient"]
    needed = {TIME_COL, EVENT_COL, *COX_MULTIVARIABLE_MODEL, "best_overall_response",
              *(column for pair in PERFORMANCE_PAIRS.values() for column in pair)}
    missing = sorted(needed - set(patients.columns))
    if missing:
        raise KeyError(f"dim_patient lacks column(s) the analytics need: {', '.join(missing)}")
    grade_counts = inputs.get("toxicity_grade_counts")
    nadir = inputs.get("lab_nadir_summary")
    prepared = add_derived_groups(patients, copy=False)  # nothing below modifies a column in place
    # the treated cohort's columns the response and performance tables read (not all 20)
    treated_columns = [c for c in ("is_treated", *RESPONSE_DEFINITIONS.values(),
                                   *(column for pair in PERFORMANCE_PAIRS.values() for column in pair))
                       if c in prepared]
    treated = _treated(prepared[list(dict.fromkeys(treated_columns))])

    months = landmark_months() if landmark_at is None else landmark_at
    by_endpoint: dict[str, dict[str, pd.DataFrame]] = {name: {} for name in BY_ENDPOINT}
    follow_up = {}
    for endpoint in analysed_endpoints(prepared):
        time_col, event_col = endpoint_columns(endpoint)
        at = months if endpoint in LANDMARK_ENDPOINTS else None  # DOR: no landmark strata
        survival = survival_analyses(prepared, time_col, event_col, at, strata)
        survival["cox_multivariable"] = cox_multivariable_table(prepared, time_col=time_col, event_col=event_col)
        for name in BY_ENDPOINT:
            by_endpoint[name][endpoint] = survival[name]
        if endpoint in FOLLOW_UP_ENDPOINTS:
            follow_up[endpoint] = follow_up_table(prepared, time_col=time_col, event_col=event_col)
    tables = {name: _with_endpoint(frames) for name, frames in by_endpoint.items()}
    tables["follow_up"] = _with_endpoint(follow_up)
    tables["response_rates"] = response_rates_table(treated)
    tables["performance_status_change"] = performance_status_change(treated)
    if grade_counts is not None:
        tables["toxicity_summary"] = toxicity_summary(grade_counts, n_patients=len(treated), decimals=None)
    if nadir is not None:
        tables["lab_nadir"] = lab_nadir_table(nadir)
    return {name: tables[name] for name in TABLES if name in tables}
