"""The survival strata and Cox covariates: one definition, read by the analytics tables, the
Survival page and the catalog.

A stratum known at the first administration (a baseline factor) is compared from day 0. One
known only later (best response, worst toxicity grade, number of cycles, cumulative activity)
would hand its "good" group the time it took to get there (guarantee-time bias; Anderson, Cain
& Gelber 1983): it is analysed at a landmark instead (``landmark``), by the group as it stood
before the landmark (``marts.dim_patient``'s ``*_at_landmark`` columns, defined in dbt).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from prrt import config

FROM_DAY_0 = "from day 0"
LANDMARK = "landmark"


@dataclass(frozen=True)
class Stratum:
    """A stratifying variable: ``variable`` is its name in the analytics tables
    (``stratum_variable``, the Cox ``covariate``), ``column`` the dim_patient column of its
    groups, ``landmark_column`` the column of the groups as they stood before the landmark
    (None: a baseline factor, compared from day 0)."""

    variable: str
    label: str
    column: str
    landmark_column: str | None = None
    reference: str | None = None  # the Cox reference level, where the first in sorted order is not it

    def source(self) -> str:
        """The column the analysis reads: the landmark column for a stratum known after day 0."""
        return self.column if self.landmark_column is None else self.landmark_column


# The median split of cumulative activity depends on the cohort analysed (the Survival page's
# selection, the landmark cohort), so it is no dim_patient column: ``groups.cumulative_activity_group``
# splits these two dim_patient columns.
ACTIVITY = "cumulative_activity_gbq"
ACTIVITY_AT_LANDMARK = "cumulative_activity_gbq_at_landmark"
SPLIT_IN_PYTHON = {"cumulative_activity_group": ACTIVITY, "cumulative_activity_group_at_landmark": ACTIVITY_AT_LANDMARK}

def _lowest_ki67_group() -> str:
    """G1's label in the seed ki67_groups (the Cox reference: the labels do not sort by grade)."""
    with (config.SEEDS_DIR / "ki67_groups.csv").open(newline="") as seed:
        return min(csv.DictReader(seed), key=lambda row: float(row["lower_percent"]))["ki67_group"]


_CYCLES = int(config.dbt_var("cycles_group_min_cycles"))  # the dbt vars the groups' labels are built from
_GRADE = int(config.dbt_var("toxicity_group_min_grade"))

STRATA: tuple[Stratum, ...] = (
    Stratum("sex", "Sex", "sex"),
    Stratum("primary_site", "Primary site", "primary_site"),
    Stratum("baseline_imaging", "Baseline imaging", "baseline_imaging"),
    Stratum("krenning_score", "Krenning score", "krenning_score"),
    Stratum("tumour_grade", "Tumour grade", "tumour_grade"),
    Stratum("ki67_group", "Ki-67 (WHO: < 3%, 3-20%, > 20%)", "ki67_group", reference=_lowest_ki67_group()),
    Stratum("cycles_group", f"Cycles (≤ {_CYCLES - 1} vs ≥ {_CYCLES})", "cycles_group", "cycles_group_at_landmark"),
    Stratum("cumulative_activity_group", "Cumulative activity (median split)", "cumulative_activity_group",
            "cumulative_activity_group_at_landmark"),
    Stratum("best_response_group", "Best response (CR/PR vs SD/PD)", "best_response_group",
            "best_response_group_at_landmark"),
    Stratum("toxicity_grade_group", f"Worst toxicity grade (≥ {_GRADE} vs < {_GRADE})", "toxicity_grade_group",
            "toxicity_grade_group_at_landmark"),
)
STRATUM: dict[str, Stratum] = {s.variable: s for s in STRATA}

# numeric covariates of the univariable Cox models (per unit), besides the strata (as categories)
COX_NUMERIC: dict[str, str] = {
    "age_at_first_cycle": "Age (per year)",
    "ecog_pre": "ECOG before (per point)",
    "kps_pre": "KPS before (per point)",
}


def dim_patient_columns() -> tuple[str, ...]:
    """The dim_patient columns the strata and the numeric Cox covariates are read from."""
    columns = [SPLIT_IN_PYTHON.get(c, c) for s in STRATA for c in (s.column, s.landmark_column) if c]
    return tuple(dict.fromkeys([*columns, *COX_NUMERIC]))


def landmark_months() -> float:
    """The landmark (months after the first administration): the dbt var ``landmark_months``,
    which the ``*_at_landmark`` columns were derived with."""
    return float(config.dbt_var("landmark_months"))


def method_label(stratum: Stratum, months: float) -> str:
    """How a stratum is compared, as the Survival page says it."""
    return FROM_DAY_0 if stratum.landmark_column is None else f"{LANDMARK} at {months:g} months"


def readable_strata() -> str:
    """The strata as the catalog lists them: variable (method)."""
    return ", ".join(f"{s.variable}{'' if s.landmark_column is None else ' (landmark)'}" for s in STRATA)

