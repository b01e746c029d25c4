"""Cohort filters shared by the outcome pages: sex, primary site, baseline imaging, treatment period.

The chosen values live in ``st.session_state`` under ``filters.<name>`` (plain keys, not
widget keys), so they hold while the user moves between pages: each page draws the same
sidebar widgets with the stored values as defaults, and a widget's ``on_change`` copies its
value back. An empty selection means "no restriction".

Pages call ``cohort()`` (draws the sidebar, returns the selection and its patient count) and
pass its ``filters`` to the reads of ``data``: the filters are applied in the warehouse
(``data._patients_where`` is their one definition), so a page reads counts and aggregates of
the selected patients, not a row per patient. ``restrict(fact, patients)`` keeps a fact
table's rows for patients already read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from streamlit_app import data

# filter name -> dim_patient column (multi-select filters)
CATEGORICAL: dict[str, str] = {
    "sex": "sex",
    "primary_site": "primary_site",
    "baseline_imaging": "baseline_imaging",
}
PERIOD_COLUMN = "first_cycle_date"

TITLES: dict[str, str] = {
    "sex": "Sex",
    "primary_site": "Primary site",
    "baseline_imaging": "Baseline imaging",
    "period": "Treatment period (first cycle)",
}

# readable labels of coded values, by dim_patient column (display only; data keep the codes)
VALUE_LABELS: dict[str, dict[str, str]] = {
    "sex": {"F": "Female", "M": "Male"},
    "primary_site": {
        "pancreas": "Pancreas", "gi": "GI", "lung": "Lung", "unknown_primary": "Unknown primary", "other": "Other",
    },
    "baseline_imaging": {"tc99m_octreotide": "99mTc-octreotide", "ga68_dotatate_pet": "68Ga-DOTATATE PET"},
}

_STATE = "filters.{}"
_WIDGET = "_filters_widget.{}"


def label(column: str, value: object) -> str:
    """Readable label of a coded value (e.g. primary_site 'gi' -> 'GI'); missing -> 'missing'."""
    if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)):
        return "missing"
    return VALUE_LABELS.get(column, {}).get(str(value), str(value))


@dataclass(frozen=True)
class Filters:
    """A cohort selection. Empty tuples and ``period = None`` do not restrict."""

    sex: tuple[str, ...] = ()
    primary_site: tuple[str, ...] = ()
    baseline_imaging: tuple[str, ...] = ()
    period: tuple[dt.date, dt.date] | None = None

    @property
    def active(self) -> bool:
        return bool(self.sex or self.primary_site or self.baseline_imaging or self.period)

    def describe(self) -> str:
        parts = []
        for name, column in CATEGORICAL.items():
            chosen = getattr(self, name)
            if chosen:
                parts.append(f"{TITLES[name]}: {', '.join(label(column, v) for v in chosen)}")
        if self.period:
            parts.append(f"first cycle {self.period[0]:%Y-%m-%d} to {self.period[1]:%Y-%m-%d}")
        return "; ".join(parts) if parts else "all patients"


def restrict(fact: pd.DataFrame, patients: pd.DataFrame, key: str = "patient_key") -> pd.DataFrame:
    """The rows of a fact table that belong to ``patients`` (a filtered dim_patient)."""
    if len(patients) == 0:
        return fact.iloc[0:0]
    return fact[fact[key].isin(patients[key])]


# --- session state ------------------------------------------------------------------


def current() -> Filters:
    """The filters stored in this session (none outside a Streamlit session)."""
    state = st.session_state
    values = {name: tuple(state.get(_STATE.format(name), ())) for name in CATEGORICAL}
    period = state.get(_STATE.format("period"))
    return Filters(**values, period=tuple(period) if period else None)


def _store(name: str) -> None:
    value = st.session_state.get(_WIDGET.format(name))
    if name == "period":
        if value is None or len(value) != 2:  # a range being picked: keep the previous one
            return
        bounds = st.session_state.get("_filters_period_bounds")
        value = None if bounds and tuple(value) == tuple(bounds) else tuple(value)
    st.session_state[_STATE.format(name)] = value


def reset() -> None:
    for name in (*CATEGORICAL, "period"):
        st.session_state.pop(_STATE.format(name), None)
        st.session_state.pop(_WIDGET.format(name), None)


def sidebar(options: pd.Series) -> Filters:
    """Draw the filter widgets in the sidebar (defaults: the stored values); return the filters.

    ``options``: the row of ``data.patient_filter_options()``."""
    stored = current()
    bar = st.sidebar
    bar.header("Cohort filters")
    for name, column in CATEGORICAL.items():
        values = sorted(str(v) for v in options[column] if v is not None)
        default = [v for v in getattr(stored, name) if v in values]
        bar.multiselect(
            TITLES[name], values, default=default, key=_WIDGET.format(name),
            format_func=lambda v, c=column: label(c, v), placeholder="All",
            on_change=_store, args=(name,),
        )
    if pd.notna(options["first_cycle"]):
        bounds = (pd.Timestamp(options["first_cycle"]).date(), pd.Timestamp(options["last_cycle"]).date())
        st.session_state["_filters_period_bounds"] = bounds
        start, end = stored.period or bounds
        value = (min(max(start, bounds[0]), bounds[1]), max(min(end, bounds[1]), bounds[0]))
        bar.date_input(
            TITLES["period"], value=value, min_value=bounds[0], max_value=bounds[1],
            key=_WIDGET.format("period"), on_change=_store, args=("period",), format="YYYY-MM-DD",
        )
    bar.button("Reset filters", on_click=reset, disabled=not stored.active, icon=":material/filter_alt_off:")
    return current()


@dataclass(frozen=True)
class Cohort:
    """The selected patients, as the filters that select them (read through ``data``) and their count."""

    n: int
    n_total: int
    filters: Filters


def cohort() -> Cohort:
    """Draw the sidebar filters and the patient count; return the selection.

    Stops the page with a message when there is no warehouse yet or no patient passes.
    """
    try:
        options = data.patient_filter_options().iloc[0]
    except FileNotFoundError as missing:
        st.info(f"{missing}")
        st.stop()
    filters = sidebar(options)
    n_total = int(options["n_patients"])
    n = data.patient_count(filters) if filters.active else n_total
    st.sidebar.markdown(f"**{n:,} of {n_total:,} patients**")
    if filters.active:
        st.sidebar.caption(filters.describe())
    if n == 0:
        st.info("No patient matches the filters. Widen them in the sidebar (or reset them).")
        st.stop()
    return Cohort(n, n_total, filters)
