"""The contract's analytics tables (schema ``analytics``) built from mart DataFrames.

Input: a patient-grain frame with ``os_months`` (float) and ``os_event`` (0/1) — a
``dim_patient``, or ``fct_survival`` joined to it — plus the categorical columns to
stratify by. ``stratum_variable = 'all'`` (stratum 'all') is always the whole cohort;
each further stratifying variable contributes one curve / median set per level that has
data. Rows with missing time, event or stratum are left out of that stratification.

Tables (contract section 5):

* km_curve:  stratum_variable, stratum, time_months, survival, ci_lower, ci_upper,
             at_risk, events, censored   (log-log pointwise band, time 0 included)
* km_median: stratum_variable, stratum, n, events, median_months, ci_lower, ci_upper,
             ci_method   (one row per R conf.type: 'log-log', 'log', 'plain';
             NaN where not reached)
* logrank:   stratum_variable, test_statistic, degrees_of_freedom, p_value
             (only for variables with >= 2 strata with data)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from .groups import best_response_group, cumulative_activity_group, cycles_group, toxicity_grade_group
from .survival import CONF_TYPES, kaplan_meier, logrank

TIME_COL = "os_months"
EVENT_COL = "os_event"
ALL = "all"

KM_CURVE_COLUMNS = ["stratum_variable", "stratum", "time_months", "survival", "ci_lower", "ci_upper",
                    "at_risk", "events", "censored"]
KM_MEDIAN_COLUMNS = ["stratum_variable", "stratum", "n", "events", "median_months", "ci_lower", "ci_upper",
                     "ci_method"]
LOGRANK_COLUMNS = ["stratum_variable", "test_statistic", "degrees_of_freedom", "p_value"]

# stratum_variable -> column of the frame prepared by ``add_derived_groups``
DEFAULT_STRATA: dict[str, str] = {
    "sex": "sex",
    "primary_site": "primary_site",
    "baseline_imaging": "baseline_imaging",
    "krenning_score": "krenning_score",
    "cycles_group": "cycles_group",
    "cumulative_activity_group": "cumulative_activity_group",
    "best_response_group": "best_response_group",
    "toxicity_grade_group": "toxicity_grade_group",
}

Strata = Sequence[str] | Mapping[str, str]


def add_derived_groups(
    dim_patient: pd.DataFrame,
    fct_toxicity: pd.DataFrame | None = None,
    *,
    n_cycles_col: str = "n_cycles",
    activity_col: str = "cumulative_activity_gbq",
    response_col: str = "best_overall_response",
    response_scheme: str = "objective_response",
    toxicity_threshold: int = 2,
) -> pd.DataFrame:
    """A copy of ``dim_patient`` with the computed grouping columns added (where inputs exist).

    cycles_group ('<= 3' / '>= 4'), cumulative_activity_group (median split),
    best_response_group ('CR/PR' / 'SD/PD' by default), toxicity_grade_group
    ('>= 2' / '< 2', needs ``fct_toxicity``).
    """
    out = dim_patient.copy()
    if n_cycles_col in out:
        out["cycles_group"] = cycles_group(out[n_cycles_col])
    if activity_col in out:
        out["cumulative_activity_group"] = cumulative_activity_group(out[activity_col])
    if response_col in out:
        out["best_response_group"] = best_response_group(out[response_col], response_scheme)
    if fct_toxicity is not None and "patient_key" in out:
        out["toxicity_grade_group"] = toxicity_grade_group(fct_toxicity, out["patient_key"], threshold=toxicity_threshold)
    return out


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


def _complete(df: pd.DataFrame, time_col: str, event_col: str) -> pd.DataFrame:
    frame = df.copy()
    frame[time_col] = pd.to_numeric(frame[time_col], errors="coerce")
    frame[event_col] = pd.to_numeric(frame[event_col], errors="coerce")
    return frame.dropna(subset=[time_col, event_col])


def _groups(
    df: pd.DataFrame, strata: Strata | None, time_col: str, event_col: str
) -> Iterator[tuple[str, list[tuple[str, pd.DataFrame]]]]:
    """(stratum_variable, [(stratum, rows), ...]) — 'all' first, then each variable's levels."""
    frame = _complete(df, time_col, event_col)
    yield ALL, [(ALL, frame)]
    for variable, column in _normalise_strata(strata).items():
        if column not in frame:
            raise KeyError(f"stratifying column {column!r} (for {variable!r}) not in the frame")
        sub = frame[frame[column].notna()]
        values = sub[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            levels = [lvl for lvl in values.cat.categories if (values == lvl).any()]
        else:
            levels = sorted(values.unique(), key=lambda v: (not isinstance(v, (int, float, np.number)), v))
        yield variable, [(_label(level), sub[values == level]) for level in levels]


def km_curve_table(
    df: pd.DataFrame,
    strata: Strata | None = None,
    *,
    time_col: str = TIME_COL,
    event_col: str = EVENT_COL,
    conf_type: str = "log-log",
) -> pd.DataFrame:
    frames = []
    for variable, groups in _groups(df, strata, time_col, event_col):
        for stratum, rows in groups:
            if rows.empty:
                continue
            curve = kaplan_meier(rows[time_col], rows[event_col]).curve(conf_type)
            curve = curve.rename(columns={"time": "time_months"})
            curve.insert(0, "stratum", stratum)
            curve.insert(0, "stratum_variable", variable)
            frames.append(curve)
    if not frames:
        return pd.DataFrame(columns=KM_CURVE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[KM_CURVE_COLUMNS]


def km_median_table(
    df: pd.DataFrame,
    strata: Strata | None = None,
    *,
    time_col: str = TIME_COL,
    event_col: str = EVENT_COL,
    conf_types: Sequence[str] = CONF_TYPES,
) -> pd.DataFrame:
    rows = []
    for variable, groups in _groups(df, strata, time_col, event_col):
        for stratum, data in groups:
            if data.empty:
                continue
            km = kaplan_meier(data[time_col], data[event_col])
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
    table = pd.DataFrame(rows, columns=KM_MEDIAN_COLUMNS)
    return table.astype({"n": "int64", "events": "int64", "median_months": float, "ci_lower": float, "ci_upper": float})


def logrank_table(
    df: pd.DataFrame,
    strata: Strata | None = None,
    *,
    time_col: str = TIME_COL,
    event_col: str = EVENT_COL,
) -> pd.DataFrame:
    rows = []
    for variable, groups in _groups(df, strata, time_col, event_col):
        if variable == ALL:
            continue
        groups = [(s, g) for s, g in groups if not g.empty]
        if len(groups) < 2:
            continue
        data = pd.concat([g.assign(_stratum=s) for s, g in groups])
        result = logrank(data[time_col], data[event_col], data["_stratum"])
        rows.append(
            {
                "stratum_variable": variable,
                "test_statistic": result.test_statistic,
                "degrees_of_freedom": result.degrees_of_freedom,
                "p_value": result.p_value,
            }
        )
    table = pd.DataFrame(rows, columns=LOGRANK_COLUMNS)
    return table.astype({"test_statistic": float, "degrees_of_freedom": "int64", "p_value": float})


def build_survival_tables(
    df: pd.DataFrame,
    strata: Strata | None = None,
    *,
    time_col: str = TIME_COL,
    event_col: str = EVENT_COL,
) -> dict[str, pd.DataFrame]:
    """All three contract tables: {'km_curve': ..., 'km_median': ..., 'logrank': ...}."""
    return {
        "km_curve": km_curve_table(df, strata, time_col=time_col, event_col=event_col),
        "km_median": km_median_table(df, strata, time_col=time_col, event_col=event_col),
        "logrank": logrank_table(df, strata, time_col=time_col, event_col=event_col),
    }


def available_strata(df: pd.DataFrame, strata: Mapping[str, str] = DEFAULT_STRATA) -> dict[str, str]:
    """The subset of ``strata`` whose columns exist in ``df`` (e.g. after ``add_derived_groups``)."""
    return {variable: column for variable, column in strata.items() if column in df}


def build_analytics_tables(
    dim_patient: pd.DataFrame,
    fct_toxicity: pd.DataFrame | None = None,
    *,
    strata: Mapping[str, str] = DEFAULT_STRATA,
    time_col: str = TIME_COL,
    event_col: str = EVENT_COL,
) -> dict[str, pd.DataFrame]:
    """The contract tables from the marts in one call.

    Adds the derived groupings to ``dim_patient`` (``add_derived_groups``; the toxicity
    grouping only when ``fct_toxicity`` is given), keeps the ``strata`` whose columns
    exist, and returns {'km_curve', 'km_median', 'logrank'}.
    """
    prepared = add_derived_groups(dim_patient, fct_toxicity)
    return build_survival_tables(prepared, available_strata(prepared, strata), time_col=time_col, event_col=event_col)
