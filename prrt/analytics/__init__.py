"""Outcome analytics: pure functions from mart DataFrames to result objects and tables.

No Dagster or Streamlit here. Modules by concern:

* ``survival``    Kaplan-Meier (lifelines) with R-compatible bands/medians, survival at times, log-rank
* ``cox``         Cox models (univariable, multivariable with a proportional-hazards check)
* ``response``    ORR / DCR with Clopper-Pearson intervals
* ``performance`` ECOG / KPS before vs after, Wilcoxon signed-rank
* ``toxicity``    patients by worst CTCAE grade per term (Table 2)
* ``labs``        time to nadir per laboratory analyte (summary of marts.fct_lab_nadir)
* ``groups``      the median split of cumulative activity (the other groups are dbt's)
* ``strata``      the survival strata and Cox covariates, and which are analysed at a landmark
* ``distinct``    rows collapsed to their distinct values with counts (for survival and Cox on a registry)
* ``tables``      the tables of schema ``analytics``, built from the marts by ``build_analytics_tables``
* ``catalog``     what each analytics table and column means, and what is read from the marts

The names below are imported on first use (PEP 562), not with the package: ``catalog`` alone
(what the Dagster definitions need) then loads without pandas, scipy and lifelines, whose
imports take seconds that a refresh spends while dbt runs instead (dagster_project/assets/dbt.py).
"""

from __future__ import annotations

import importlib

# module of this package -> the names it exports here
_MODULES = {
    "catalog": "ANALYTICS_QUERIES ENDPOINTS MARTS_READ TABLES TableDoc endpoint_columns",
    "cox": "ChiSquareTest CoxResult cox_drop1 cox_multivariable cox_univariable cox_zph fit_cox",
    "groups": "cumulative_activity_group median_split",
    "labs": "lab_nadir_table",
    "performance": "PairedComparison paired_wilcoxon performance_status_change signed_rank_exact_by_counts",
    "response": "Proportion ResponseRates TimeSummary clopper_pearson response_rates response_rates_table"
                " time_to_response",
    "survival": "CONF_TYPES MEDIAN_CI_METHODS KaplanMeier LogRankResult MedianSurvival kaplan_meier logrank",
    "strata": "STRATA STRATUM Stratum landmark_months",
    "tables": "DEFAULT_STRATA add_derived_groups available_strata build_analytics_tables build_survival_tables"
              " cox_multivariable_table cox_univariable_table km_curve_table km_median_table km_survival_at_table"
              " logrank_table analysed_endpoints follow_up_table landmark"
              " survival_analyses",
    "toxicity": "grade_counts toxicity_summary toxicity_table worst_grade_counts",
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names.split()}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
