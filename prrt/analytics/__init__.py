"""Outcome analytics: pure functions from mart DataFrames to result objects and tables.

No Dagster or Streamlit here. Modules by concern:

* ``survival``    Kaplan-Meier (lifelines) with R-compatible bands/medians, survival at times, log-rank
* ``cox``         Cox models (univariable, multivariable with a proportional-hazards check)
* ``response``    ORR / DCR with Clopper-Pearson intervals
* ``performance`` ECOG / KPS before vs after, Wilcoxon signed-rank
* ``toxicity``    patients by worst CTCAE grade per term (Table 2)
* ``labs``        time to nadir per laboratory analyte (summary of marts.fct_lab_nadir)
* ``groups``      derived strata (cycles, activity median split, response, toxicity grade)
* ``tables``      the tables of schema ``analytics``, built from the marts by ``build_analytics_tables``
* ``catalog``     what each analytics table and column means, and what is read from the marts
"""

from .catalog import ANALYTICS_QUERIES, MARTS_READ, TABLES, TableDoc
from .cox import CoxResult, cox_multivariable, cox_univariable, fit_cox
from .groups import (
    best_response_group,
    cumulative_activity_group,
    cycles_group,
    grade_threshold_group,
    median_split,
    toxicity_grade_group,
)
from .labs import lab_nadir_table
from .performance import PairedComparison, paired_wilcoxon, performance_status_change
from .response import Proportion, ResponseRates, clopper_pearson, response_rates, response_rates_table
from .survival import CONF_TYPES, KaplanMeier, LogRankResult, MedianSurvival, kaplan_meier, logrank
from .tables import (
    DEFAULT_STRATA,
    add_derived_groups,
    available_strata,
    build_analytics_tables,
    build_survival_tables,
    cox_multivariable_table,
    cox_univariable_table,
    km_curve_table,
    km_median_table,
    km_survival_at_table,
    logrank_table,
)
from .toxicity import grade_counts, toxicity_summary, toxicity_table, worst_grade_any_term, worst_grade_counts

__all__ = [
    "ANALYTICS_QUERIES",
    "CONF_TYPES",
    "CoxResult",
    "DEFAULT_STRATA",
    "KaplanMeier",
    "LogRankResult",
    "MARTS_READ",
    "MedianSurvival",
    "PairedComparison",
    "Proportion",
    "ResponseRates",
    "TABLES",
    "TableDoc",
    "add_derived_groups",
    "available_strata",
    "best_response_group",
    "build_analytics_tables",
    "build_survival_tables",
    "clopper_pearson",
    "cox_multivariable",
    "cox_multivariable_table",
    "cox_univariable",
    "cox_univariable_table",
    "cumulative_activity_group",
    "cycles_group",
    "fit_cox",
    "grade_counts",
    "grade_threshold_group",
    "kaplan_meier",
    "km_curve_table",
    "km_median_table",
    "km_survival_at_table",
    "lab_nadir_table",
    "logrank",
    "logrank_table",
    "median_split",
    "paired_wilcoxon",
    "performance_status_change",
    "response_rates",
    "response_rates_table",
    "toxicity_grade_group",
    "toxicity_summary",
    "toxicity_table",
    "worst_grade_any_term",
    "worst_grade_counts",
]
