"""Outcome analytics: pure functions from mart DataFrames to result objects and tables.

No Dagster or Streamlit here. Modules by concern:

* ``survival``    Kaplan-Meier (lifelines) with R-compatible bands/medians, survival at times, log-rank
* ``cox``         Cox models (univariable, multivariable with a proportional-hazards check)
* ``response``    ORR / DCR with Clopper-Pearson intervals
* ``performance`` ECOG / KPS before vs after, Wilcoxon signed-rank
* ``toxicity``    patients by worst CTCAE grade per term (Table 2)
* ``groups``      derived strata (cycles, activity median split, response, toxicity grade)
* ``tables``      the contract's analytics tables: km_curve, km_median, logrank
"""

from .cox import CoxResult, cox_multivariable, cox_univariable, fit_cox
from .groups import (
    best_response_group,
    cumulative_activity_group,
    cycles_group,
    median_split,
    toxicity_grade_group,
)
from .performance import PairedComparison, paired_wilcoxon, performance_status_change
from .response import Proportion, ResponseRates, clopper_pearson, response_rates
from .survival import CONF_TYPES, KaplanMeier, LogRankResult, MedianSurvival, kaplan_meier, logrank
from .tables import (
    DEFAULT_STRATA,
    add_derived_groups,
    available_strata,
    build_analytics_tables,
    build_survival_tables,
    km_curve_table,
    km_median_table,
    logrank_table,
)
from .toxicity import toxicity_table, worst_grade_any_term

__all__ = [
    "CONF_TYPES",
    "DEFAULT_STRATA",
    "CoxResult",
    "KaplanMeier",
    "LogRankResult",
    "MedianSurvival",
    "PairedComparison",
    "Proportion",
    "ResponseRates",
    "add_derived_groups",
    "available_strata",
    "best_response_group",
    "build_analytics_tables",
    "build_survival_tables",
    "clopper_pearson",
    "cox_multivariable",
    "cox_univariable",
    "cumulative_activity_group",
    "cycles_group",
    "fit_cox",
    "kaplan_meier",
    "km_curve_table",
    "km_median_table",
    "logrank",
    "logrank_table",
    "median_split",
    "paired_wilcoxon",
    "performance_status_change",
    "response_rates",
    "toxicity_grade_group",
    "toxicity_table",
    "worst_grade_any_term",
]
